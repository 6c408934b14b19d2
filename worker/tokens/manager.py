"""The token manager: one fresh, verified session token for the worker's organization.

``TokenManager.run()`` mints and verifies a token, reports it through
``task_status.started(token)``, then refreshes it before it expires, for ever. Each new
verified token goes to every listener (``add_listener``); listeners run apart from the
refresh loop and each call is bounded by a timeout, so a listener stuck on a dying socket
never delays the next refresh. A token that fails verification is never handed on.

``run()`` only ends by raising: ``SessionEnded`` when Clerk says the session is gone (the
process should exit non-zero so the operator provisions a new session), ``ConfigError``
when the refresh margin does not fit the token lifetime, or the first token's error when
the worker cannot start (wrong org, missing role, nothing within ``startup_timeout_s``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from tenacity import RetryCallState

from worker import retry
from worker.clock import Clock
from worker.errors import ConfigError, SessionEnded, TokenRejected, TokenUnavailable, is_transient
from worker.tokens import schedule
from worker.tokens.fanout import Fanout
from worker.tokens.sources import TokenSource
from worker.tokens.states import RefreshResult, TokenMetrics, TokenState, fatal_at_start, result_of
from worker.tokens.verify import Token

__all__ = ["Listener", "TokenManager", "Verifier"]

log = logging.getLogger("worker.tokens")

Listener = Callable[[Token], Awaitable[None]]
_LIVE = (TokenState.FRESH, TokenState.REFRESHING, TokenState.FAILING)


class Verifier(Protocol):
    """What the manager needs from ``TokenVerifier`` (a seam for tests)."""

    async def verify(self, token: str) -> Token:
        """Return the verified token or raise ``TokenRejected``/``TokenUnavailable``."""
        ...


class TokenManager:
    """Keeps one fresh, verified token for the worker's organization."""

    def __init__(
        self,
        source: TokenSource,
        verifier: Verifier,
        clock: Clock,
        *,
        refresh_margin_s: float = 15.0,
        metrics: TokenMetrics | None = None,
        listener_timeout_s: float = 10.0,
        fetch_timeout_s: float = 15.0,
        startup_timeout_s: float = 60.0,
        max_backoff_s: float = 10.0,  # also the retry pace once the token has expired
        rng: random.Random | None = None,
    ) -> None:
        self._source = source
        self._verifier = verifier
        self._clock = clock
        self._margin_s = refresh_margin_s
        self._metrics = metrics
        self._fetch_timeout_s = fetch_timeout_s
        self._startup_timeout_s = startup_timeout_s
        self._max_backoff_s = max_backoff_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._fanout: Fanout[Token] = Fanout(listener_timeout_s)
        self._current: Token | None = None
        self._state = TokenState.STARTING
        self._changed: anyio.Event | None = None
        self._counts = {"refreshes": 0, "failures": 0, "consecutive_failures": 0}
        self._last_error: str | None = None
        self._last_success_at: float | None = None

    @property
    def current(self) -> Token | None:
        """The newest verified token, or None before the first one."""
        return self._current

    @property
    def state(self) -> TokenState:
        """The manager's state; ``EXPIRED`` once the current token's ``exp`` has passed."""
        live = self._state in _LIVE
        if live and self._current and self._clock.time() >= self._current.expires_at:
            return TokenState.EXPIRED
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(token)`` with every new verified token from now on.

        A listener added after a token was published does not get it: read ``current``.
        Exceptions are logged, and each call is cancelled after ``listener_timeout_s``.
        """
        self._fanout.add(listener)

    def check_fresh(self) -> str | None:
        """A readiness check: None while a valid token is held, else the reason."""
        state = self.state
        if self._current is None or state not in _LIVE:
            return f"token {state}" + (f": {self._last_error}" if self._last_error else "")
        return None

    def statistics(self) -> dict[str, Any]:
        """A cheap snapshot for ``/status``; never contains the token or its subject."""
        token, now = self._current, self._clock.time()
        return {
            "state": self.state.value,
            "kid": token.kid if token else None,
            "expires_at": token.expires_at if token else None,
            "expires_in_s": round(token.expires_in(now), 3) if token else None,
            "lifetime_s": token.lifetime_s if token else None,
            "last_success_at": self._last_success_at,
            "last_error": self._last_error,
            "listeners": len(self._fanout),
            "listener_timeouts": self._fanout.timeouts,
            "listener_errors": self._fanout.errors,
            **self._counts,
        }

    async def wait_fresh(self) -> Token:
        """Wait until the state is ``fresh`` and return the token (``SessionEnded`` if the
        session ends first). Callers bound it with ``anyio.fail_after``."""
        while self.state is not TokenState.FRESH or self._current is None:
            if self._state is TokenState.SESSION_ENDED:
                raise SessionEnded("the Clerk session has ended")
            await self._change_event().wait()
        return self._current

    async def run(self, *, task_status: TaskStatus[Token] = anyio.TASK_STATUS_IGNORED) -> None:
        """Mint the first token, report it, then keep it fresh until cancelled.

        Never returns normally: it raises ``SessionEnded``, ``ConfigError`` or the first
        token's error (see the module docstring), or is cancelled by its task group.
        """
        token = await self._obtain(first=True)
        self._check_margin(token)
        async with anyio.create_task_group() as tg:
            self._fanout.attach(tg)
            self._fanout.publish(token)
            task_status.started(token)
            while True:
                await self._clock.sleep(self._refresh_in(token))
                self._set_state(TokenState.REFRESHING)
                token = await self._obtain(first=False)

    def _refresh_in(self, token: Token) -> float:
        now = self._clock.time()
        when = schedule.refresh_at(
            issued_at=token.issued_at,
            expires_at=token.expires_at,
            now=now,
            margin_s=self._margin_s,
            rand=self._rng.random(),
        )
        return when - now

    def _check_margin(self, token: Token) -> None:
        if self._margin_s >= token.lifetime_s:
            raise ConfigError(
                [
                    f"WORKER_TOKEN_REFRESH_MARGIN_SECONDS={self._margin_s:g} is not below the "
                    f"token lifetime ({token.lifetime_s:g}s): lower it or raise "
                    f"CLERK_TOKEN_EXPIRES_IN_SECONDS"
                ]
            )

    async def _obtain(self, *, first: bool) -> Token:
        """Attempt until a verified token arrives; back off between failures.

        At start, errors no retry can fix are raised at once, and any error once
        ``startup_timeout_s`` has passed; mid-run only an ended session stops it.
        """

        def transient(exc: BaseException) -> bool:
            return is_transient(exc) and not (first and fatal_at_start(exc))

        loop = retry.retrying(
            sleep=self._clock.sleep,
            transient=transient,
            wait=schedule.TokenWait(
                rand=self._rng.random,
                cap_s=self._max_backoff_s,
                time_left_s=self._time_left,
            ),
            before_sleep=self._log_failure,
            stop=retry.Deadline(self._clock, self._startup_timeout_s)
            if first
            else retry.stop_never,
        )
        try:
            return await loop(self._attempt)
        except SessionEnded:
            self._end_session()
            raise

    async def _attempt(self) -> Token:
        started = self._clock.monotonic()
        try:
            with anyio.fail_after(self._fetch_timeout_s):
                token = await self._verifier.verify(await self._source.fetch())
            self._check_newer(token)
        except Exception as exc:
            self._record(result_of(exc), started)
            self._counts["failures"] += 1
            self._counts["consecutive_failures"] += 1
            self._last_error = f"{result_of(exc)}: {exc}"
            if self._current is not None and not isinstance(exc, SessionEnded):
                self._set_state(TokenState.FAILING)
            raise
        self._record(RefreshResult.SUCCESS, started)
        self._publish(token)
        return token

    def _check_newer(self, token: Token) -> None:
        # A file source may still hold the token we have; using it would re-schedule a
        # refresh in the past and spin, so it counts as a failed attempt instead.
        if self._current is not None and token.expires_at <= self._current.expires_at:
            raise TokenUnavailable("the source returned no newer token than the current one")

    def _publish(self, token: Token) -> None:
        self._current = token
        self._last_success_at = self._clock.time()
        self._last_error = None
        self._counts["refreshes"] += 1
        self._counts["consecutive_failures"] = 0
        if self._metrics is not None:
            self._metrics.token_expiry_timestamp_seconds.set(token.expires_at)
            self._metrics.token_last_refresh_success_timestamp_seconds.set(self._last_success_at)
        log.info(
            "token refreshed",
            extra={"kid": token.kid, "exp": token.expires_at, "lifetime_s": token.lifetime_s},
        )
        self._set_state(TokenState.FRESH)
        self._fanout.publish(token)

    def _record(self, result: RefreshResult, started: float) -> None:
        if self._metrics is not None:
            self._metrics.token_refresh_total.labels(result=result).inc()
            elapsed = max(0.0, self._clock.monotonic() - started)
            self._metrics.token_refresh_duration_seconds.observe(elapsed)

    def _time_left(self) -> float | None:
        token = self._current
        return token.expires_in(self._clock.time()) if token else None

    def _log_failure(self, retry_state: RetryCallState) -> None:
        """``before_sleep``: the attempt was counted by ``_attempt``; say what comes next."""
        exc = retry.last_error(retry_state)
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "token refresh failed; retrying",
            extra={
                "result": result_of(exc).value if exc else None,
                "reason": exc.reason if isinstance(exc, TokenRejected) else None,
                "error": str(exc),
                "retry_in_s": round(delay, 3),
                "state": self.state.value,
            },
        )

    def _end_session(self) -> None:
        self._set_state(TokenState.SESSION_ENDED)
        if self._metrics is not None:
            self._metrics.token_session_ended.set(1)
        log.error(
            "CLERK SESSION ENDED: no further tokens can be minted; the worker stops. "
            "Create a new session for the service user and update CLERK_SESSION_ID.",
            extra={"error": self._last_error},
        )

    def _set_state(self, state: TokenState) -> None:
        self._state = state
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _change_event(self) -> anyio.Event:
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed
