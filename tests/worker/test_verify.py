"""TokenVerifier and check_claims: real RS256 keys, a JWKS served through the HTTP seam."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.worker.fakes import (
    ISSUER,
    JWKS_URL,
    ORG,
    OTHER_ORG,
    SESSION,
    FakeClerk,
    claims_v2,
    key,
    sign,
)
from worker.errors import TokenRejected, TokenUnavailable
from worker.testing import FakeClock
from worker.tokens.verify import TokenVerifier, check_claims

pytestmark = pytest.mark.anyio


def make_verifier(
    http: httpx.AsyncClient, clock: FakeClock, issuer: str | None = ISSUER
) -> TokenVerifier:
    return TokenVerifier(JWKS_URL, issuer, ORG, http, clock, refetch_cooldown_s=30)


async def rejection(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        await verifier.verify(token)
    return info.value.reason


async def test_a_valid_v2_token_is_verified_into_a_token(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    text = sign(claims_v2(clock.time()))
    token = await make_verifier(http, clock).verify(text)
    assert (token.org_id, token.kid, token.session_id) == (ORG, "key-1", SESSION)
    assert token.expires_at - token.issued_at == 60
    assert token.jwt == text
    assert text not in repr(token)
    assert "user_2service" not in repr(token)


async def test_a_v1_token_with_flat_org_id_is_accepted(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    claims = claims_v2(clock.time(), org_id=ORG, org_role="org:admin")
    del claims["o"]
    assert (await make_verifier(http, clock).verify(sign(claims))).org_id == ORG


async def test_a_token_signed_by_another_key_with_a_known_kid_fails_the_signature(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    forged = sign(claims_v2(clock.time()), key("attacker"), kid="key-1")
    assert await rejection(make_verifier(http, clock), forged) == "signature"


async def test_wrong_issuer_is_rejected_and_no_issuer_setting_skips_the_check(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    text = sign(claims_v2(clock.time(), iss="https://evil.example"))
    assert await rejection(make_verifier(http, clock), text) == "issuer"
    assert (await make_verifier(http, clock, issuer=None).verify(text)).org_id == ORG


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not-a-jwt", "malformed"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "malformed"),
    ],
)
async def test_garbage_and_unsigned_tokens_are_malformed(
    http: httpx.AsyncClient, clock: FakeClock, text: str, reason: str
) -> None:
    assert await rejection(make_verifier(http, clock), text) == reason


async def test_missing_required_claim_is_malformed(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    claims = claims_v2(clock.time())
    del claims["sub"]
    assert await rejection(make_verifier(http, clock), sign(claims)) == "malformed"


async def test_timing_is_checked_against_the_injected_clock_with_leeway(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    verifier = make_verifier(http, clock)
    text = sign(claims_v2(clock.time(), lifetime_s=60))
    clock.advance(64)  # exp + 4 s: inside the 5 s leeway
    assert (await verifier.verify(text)).org_id == ORG
    clock.advance(2)
    assert await rejection(verifier, text) == "expired"
    future = sign(claims_v2(clock.time() + 100))
    assert await rejection(verifier, future) == "not_yet_valid"


async def test_an_unknown_kid_refetches_the_jwks_once_and_picks_up_a_rotated_key(
    clerk: FakeClerk, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    verifier = make_verifier(http, clock)
    await verifier.verify(sign(claims_v2(clock.time())))
    clerk.published.append(key("key-2"))
    clock.advance(31)
    token = await verifier.verify(sign(claims_v2(clock.time()), key("key-2")))
    assert token.kid == "key-2"
    assert clerk.jwks_requests == 2


async def test_a_flood_of_unknown_kids_does_not_hammer_the_jwks(
    clerk: FakeClerk, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    verifier = make_verifier(http, clock)
    await verifier.verify(sign(claims_v2(clock.time())))
    clock.advance(31)
    for n in range(20):
        bogus = sign(claims_v2(clock.time()), key("attacker"), kid=f"bogus-{n}")
        assert await rejection(verifier, bogus) == "unknown_kid"
    assert clerk.jwks_requests == 2  # the first load and a single refetch


async def test_an_unreachable_jwks_is_unavailable_not_a_rejection(clock: FakeClock) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        with pytest.raises(TokenUnavailable):
            await make_verifier(http, clock).verify(sign(claims_v2(clock.time())))


def test_check_claims_rejects_wrong_org_missing_role_pending_and_orgless() -> None:
    now = 1_800_000_000.0

    def reason(**extra: Any) -> str:
        claims = {k: v for k, v in claims_v2(now).items() if v is not None} | extra
        claims = {k: v for k, v in claims.items() if v is not None}
        with pytest.raises(TokenRejected) as info:
            check_claims(claims, org_id=ORG, now=now, leeway_s=5)
        return info.value.reason

    assert reason(o={"id": OTHER_ORG}) == "wrong_org"
    assert reason(role=None) == "missing_role"
    assert reason(role="") == "missing_role"
    assert reason(sts="pending") == "pending_session"
    assert reason(o=None) == "no_org"
    assert reason(exp="soon") == "malformed"
    assert reason(iat=True) == "malformed"


org_ids = st.from_regex(r"org_[A-Za-z0-9]{1,12}", fullmatch=True)


@given(token_org=org_ids, v1=st.booleans(), role=st.none() | st.sampled_from(["authenticated", ""]))
def test_check_claims_accepts_only_this_orgs_tokens_with_a_role(
    token_org: str, v1: bool, role: str | None
) -> None:
    now = 1_800_000_000.0
    claims = claims_v2(now)
    del claims["o"], claims["role"]
    claims |= {"org_id": token_org} if v1 else {"o": {"id": token_org}}
    if role is not None:
        claims["role"] = role
    if role and token_org == ORG:
        assert check_claims(claims, org_id=ORG, now=now, leeway_s=5) == ORG
    else:
        with pytest.raises(TokenRejected) as info:
            check_claims(claims, org_id=ORG, now=now, leeway_s=5)
        assert info.value.reason == ("missing_role" if not role else "wrong_org")


@given(exp_offset=st.integers(-1000, 1000), leeway=st.integers(0, 30))
def test_check_claims_expiry_respects_the_leeway(exp_offset: int, leeway: int) -> None:
    now = 1_800_000_000.0
    claims = claims_v2(now) | {"exp": now + exp_offset, "iat": now - 2000, "nbf": now - 2000}
    if exp_offset + leeway >= 0:
        assert check_claims(claims, org_id=ORG, now=now, leeway_s=leeway) == ORG
    else:
        with pytest.raises(TokenRejected, match="expired"):
            check_claims(claims, org_id=ORG, now=now, leeway_s=leeway)
