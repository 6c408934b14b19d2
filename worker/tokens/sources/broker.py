"""The broker token source: ``POST {WORKER_TOKEN_BROKER_URL}/v1/token`` with a credential.

The credential file holds a projected ServiceAccount token (the kubelet rotates it) or a
static credential; it is re-read when its modification time or size changes. The broker
decides the org from the credential; the token manager still verifies every token
(JWKS, ``iss``, org = ``ORG_ID``, ``role``), so a broker that hands out another org's
token is refused like Clerk would be. Failures are ``TokenUnavailable`` (retried with
backoff bounded by the time the current token has left); no message contains the
credential or a token.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import jwt

from worker.errors import TokenUnavailable

__all__ = ["BrokerTokenSource", "describe_credential"]


class BrokerTokenSource:
    """Asks the token broker for the current token of the org the credential belongs to."""

    def __init__(self, url: str, credential_file: Path | str, *, http: httpx.AsyncClient) -> None:
        self._url = url.rstrip("/") + "/v1/token"
        self._path = anyio.Path(credential_file)
        self._seen: tuple[int, int] | None = None
        self._credential = ""
        self._http = http

    def __repr__(self) -> str:
        return f"BrokerTokenSource(url={self._url!r}, credential_file={str(self._path)!r})"

    async def fetch(self) -> str:
        """The broker's current token for this worker's org (the JWT text)."""
        headers = {"Authorization": f"Bearer {await self._read_credential()}"}
        try:
            response = await self._http.post(self._url, headers=headers)
        except httpx.TimeoutException as exc:
            raise TokenUnavailable(f"broker did not answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"broker unreachable: {type(exc).__name__}") from exc
        body = _json(response)
        if response.status_code != 200:
            reason = body.get("reason") if isinstance(body.get("reason"), str) else "no reason"
            raise TokenUnavailable(
                f"broker answered HTTP {response.status_code} ({str(reason)[:80]})",
                status=response.status_code,
            )
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise TokenUnavailable("broker answered 200 without a token", status=200)
        return token

    async def _read_credential(self) -> str:
        try:
            stat = await self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._seen or not self._credential:
                self._credential = (await self._path.read_text(encoding="utf-8")).strip()
                self._seen = stamp
        except OSError as exc:
            raise TokenUnavailable(
                f"broker credential file {self._path} unreadable: {exc.strerror}"
            ) from exc
        if not self._credential:
            raise TokenUnavailable(f"broker credential file {self._path} is empty")
        return self._credential


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def describe_credential(path: Path) -> str:
    """What identity the credential file holds, printable: a ServiceAccount's ``sub`` (the
    token itself is not shown) or "a static credential"; never the credential."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return f"unreadable credential file {path} ({exc.strerror})"
    if text.count(".") == 2:
        try:
            sub = jwt.decode(text, options={"verify_signature": False}).get("sub")
        except jwt.PyJWTError:
            return f"an unreadable token in {path}"
        return f"ServiceAccount token of {sub} ({path})"
    return f"a static credential ({path})"
