"""Signed object URLs (devstack.storage.signing), as supabase/storage makes and checks them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from devstack.storage.errors import StorageError
from devstack.storage.signing import UrlSigner, expires_in
from tests.devstack.clerk_support import FakeClock

SECRET = "storage-signing-test-secret-of-32-bytes"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def signer(clock: FakeClock) -> UrlSigner:
    return UrlSigner(SECRET, clock)


def token_of(path: str) -> str:
    return parse_qs(urlsplit(path).query)["token"][0]


def test_the_token_is_the_projects_hs256_jwt_with_url_scope_and_exp(
    signer: UrlSigner, clock: FakeClock
) -> None:
    path = signer.sign("org-files", "org_1/r.txt", 60)
    claims = jwt.decode(token_of(path), SECRET, algorithms=["HS256"])
    assert path.startswith("/object/sign/org-files/org_1/r.txt?token=")
    assert claims["url"] == "org-files/org_1/r.txt"
    assert claims["scope"] == "download"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["iat"] == int(clock())


def test_a_token_opens_its_object_until_exp(signer: UrlSigner, clock: FakeClock) -> None:
    token = token_of(signer.sign("org-files", "org_1/r.txt", 60))
    clock.advance(59)
    assert signer.verify(token, "org-files", "org_1/r.txt")["url"] == "org-files/org_1/r.txt"
    clock.advance(1)
    with pytest.raises(StorageError) as expired:
        signer.verify(token, "org-files", "org_1/r.txt")
    assert expired.value.body()["code"] == "InvalidJWT"
    assert expired.value.message == '"exp" claim timestamp check failed'


@pytest.mark.parametrize(
    ("bucket", "name"), [("org-files", "org_1/other.txt"), ("elsewhere", "org_1/r.txt")]
)
def test_a_token_does_not_open_another_object(signer: UrlSigner, bucket: str, name: str) -> None:
    token = token_of(signer.sign("org-files", "org_1/r.txt", 60))
    with pytest.raises(StorageError) as other:
        signer.verify(token, bucket, name)
    assert (other.value.code, other.value.message) == ("InvalidSignature", "Invalid signature")


def test_upload_tokens_and_foreign_signatures_are_refused(signer: UrlSigner) -> None:
    upload = jwt.encode({"url": "b/x", "upsert": True, "exp": 4102444800}, SECRET)
    forged = jwt.encode({"url": "b/x", "exp": 4102444800}, "another-secret-of-32-bytes-long!")
    with pytest.raises(StorageError) as scoped:
        signer.verify(upload, "b", "x")
    with pytest.raises(StorageError) as bad:
        signer.verify(forged, "b", "x")
    assert scoped.value.message == "Token is not scoped for download"
    assert (bad.value.code, bad.value.message) == ("InvalidJWT", "signature verification failed")


@pytest.mark.parametrize(("value", "seconds"), [(60, 60), ("60", 60), (1, 1)])
def test_expires_in_takes_whole_seconds(value: object, seconds: int) -> None:
    assert expires_in(value) == seconds


@pytest.mark.parametrize("value", [0, -5, "soon", 1.5, True, None])
def test_expires_in_refuses_anything_else(value: object) -> None:
    with pytest.raises(StorageError) as refused:
        expires_in(value)
    assert refused.value.body() == {
        "statusCode": "400",
        "error": "InvalidParameter",
        "message": "Invalid Parameter expiresIn",
        "code": "InvalidParameter",
    }
