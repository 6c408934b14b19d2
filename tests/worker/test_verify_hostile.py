"""Token verification never crashes: what a signed token's header and claims can hold
(``crit``, timing claims of 10**400, any JSON), the required ``role``, and JWKS documents
with duplicate kids or encryption keys. Every failure is a ``TokenRejected`` with a reason
(or ``TokenUnavailable`` when no key of the JWKS can be used)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.worker.fakes import (
    ISSUER,
    JWKS_URL,
    ORG,
    FakeClerk,
    FakeClock,
    KeyPair,
    claims_v2,
    key,
    sign,
)
from worker.errors import TokenRejected, TokenUnavailable
from worker.tokens.verify import TokenVerifier

pytestmark = pytest.mark.anyio

HUGE = "1" + "0" * 400  # a JSON integer: a Python int too large for a float


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_raw(header: str, claims: str, signer: KeyPair | None = None) -> str:
    """A token whose header and claims are exactly this JSON text, validly signed."""
    signer = signer or key()
    signing_input = f"{b64(header.encode())}.{b64(claims.encode())}"
    rsa = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256)
    return f"{signing_input}.{b64(rsa.sign(signing_input.encode(), signer.private))}"


def verifier(http: httpx.AsyncClient, clock: FakeClock, **kw: Any) -> TokenVerifier:
    return TokenVerifier(JWKS_URL, ISSUER, ORG, http, clock, refetch_cooldown_s=30, **kw)


async def rejection(v: TokenVerifier, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        await v.verify(token)
    return info.value


HEADER = '{"alg":"RS256","kid":"key-1","typ":"JWT"}'


@pytest.mark.parametrize(
    "header",
    [
        '{"alg":"RS256","kid":"key-1","crit":["exp"]}',
        '{"alg":"RS256","kid":"key-1","crit":["b64"],"b64":false}',
        '{"alg":"RS256","kid":"key-1","crit":[]}',
    ],
)
async def test_a_crit_header_is_refused_with_a_reason(
    http: httpx.AsyncClient, clock: FakeClock, header: str
) -> None:
    token = signed_raw(header, json.dumps(claims_v2(clock.time())))
    refused = await rejection(verifier(http, clock), token)
    assert refused.reason == "malformed"
    if "b64" not in header:  # PyJWT reads b64=false itself, and the payload is then no JSON
        assert "crit" in str(refused)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [HUGE, f"-{HUGE}", "1e400", "-1e400", "1e300"])
async def test_timing_claims_that_overflow_are_refused_not_a_crash(
    http: httpx.AsyncClient, clock: FakeClock, claim: str, value: str
) -> None:
    claims = claims_v2(clock.time()) | {claim: 0}
    text = json.dumps(claims).replace(f'"{claim}": 0', f'"{claim}": {value}')
    refused = await rejection(verifier(http, clock), signed_raw(HEADER, text))
    assert refused.reason == "malformed"
    assert claim in str(refused)


async def test_the_role_must_be_authenticated_unless_configured_otherwise(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    for role in ("anon", "service_role", "postgres"):
        token = sign(claims_v2(clock.time(), role=role))
        refused = await rejection(verifier(http, clock), token)
        assert refused.reason == "missing_role"
        assert "not authenticated" in str(refused)
    worker_role = sign(claims_v2(clock.time(), role="worker"))
    assert (await verifier(http, clock, role="worker").verify(worker_role)).org_id == ORG
    authenticated = sign(claims_v2(clock.time()))
    assert (await rejection(verifier(http, clock, role="worker"), authenticated)).reason == (
        "missing_role"
    )


# -- the JWKS ------------------------------------------------------------------------------


def with_jwks(clerk: FakeClerk, keys: list[dict[str, Any]]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json={"keys": keys})
        return clerk.handle(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_a_kid_listed_twice_is_unusable_and_other_keys_still_verify(
    clerk: FakeClerk, clock: FakeClock
) -> None:
    twice = [key("key-1").jwk(), key("attacker").jwk() | {"kid": "key-1"}, key("key-2").jwk()]
    async with with_jwks(clerk, twice) as http:
        v = verifier(http, clock)
        refused = await rejection(v, sign(claims_v2(clock.time())))
        assert refused.reason == "unusable_kid"
        assert "listed more than once" in str(refused)
        token = await v.verify(sign(claims_v2(clock.time()), key("key-2")))
        assert token.kid == "key-2"


async def test_an_encryption_key_is_never_used_to_verify(
    clerk: FakeClerk, clock: FakeClock
) -> None:
    keys = [key("key-1").jwk() | {"use": "enc"}, key("key-2").jwk()]
    async with with_jwks(clerk, keys) as http:
        refused = await rejection(verifier(http, clock), sign(claims_v2(clock.time())))
        assert refused.reason == "unusable_kid"
        assert "not a signing key" in str(refused)


@pytest.mark.parametrize(
    "keys",
    [
        [{"kty": "RSA", "kid": "key-1", "use": "enc"}],
        [{"kid": "key-1", "kty": "nope"}],
        ["not an object", 7],
    ],
)
async def test_a_jwks_without_a_usable_signing_key_is_unavailable_with_the_reason(
    clerk: FakeClerk, clock: FakeClock, keys: list[Any]
) -> None:
    async with with_jwks(clerk, keys) as http:
        with pytest.raises(TokenUnavailable, match="no usable signing key"):
            await verifier(http, clock).verify(sign(claims_v2(clock.time())))


# -- properties -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from([HUGE, "1e400"]).map(float)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
claim_maps = st.dictionaries(
    st.sampled_from(["exp", "iat", "nbf", "role", "sub", "o", "org_id", "iss", "sts", "sid"]),
    json_values,
    max_size=10,
)
headers = st.fixed_dictionaries(
    {"alg": st.just("RS256"), "kid": st.just("key-1")},
    optional={"crit": json_values, "typ": json_values, "b64": json_values, "x": json_values},
)


@given(header=headers, claims=claim_maps, base=st.booleans())
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_any_signed_header_and_claims_give_a_token_or_a_rejection(
    http: httpx.AsyncClient,
    clock: FakeClock,
    header: dict[str, Any],
    claims: dict[str, Any],
    base: bool,
) -> None:
    if base:
        claims = claims_v2(clock.time()) | claims
    text = json.dumps(claims, allow_nan=True)
    token = signed_raw(json.dumps(header), text)
    try:
        verified = await verifier(http, clock).verify(token)
    except TokenRejected as exc:
        assert exc.reason in {  # noqa: PT017 - a property: either outcome is fine
            "malformed",
            "expired",
            "not_yet_valid",
            "missing_role",
            "pending_session",
            "no_org",
            "wrong_org",
            "issuer",
            "signature",
        }
    else:
        assert verified.org_id == ORG
        assert "crit" not in header
