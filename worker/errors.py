"""The worker's exceptions, one tree, messages written for the operator.

    WorkerError
    ├── ConfigError                 bad or missing settings; the process exits 2
    ├── TokenError                  anything about the Clerk session token
    │   ├── TokenRejected           a minted token failed verification (reason says why);
    │   │                           it is never pushed anywhere
    │   ├── TokenUnavailable        Clerk could not be reached or answered an error
    │   │                           (retryable; carries retry_after_s when Clerk sent one)
    │   ├── SessionEnded            the Clerk session is gone (404/ended): not retryable
    │   └── SessionUnobtainable     no Clerk session can be had for the service user (reason
    │                               says why, the message says the fix): not retryable
    ├── RealtimeError               the Realtime connection or a channel
    │   └── JoinRefused             the server refused a join (reason = the server's text)
    ├── DataApiError                a data API (PostgREST) call failed
    │   └── CheckpointFenced        a checkpoint save refused: a newer lease epoch leads
    ├── StorageError                a Storage call failed (``status``: the platform's, if any)
    ├── ResourceError               a handler module's lifespan failed to open (exit 1), or
    │                               a resource read while not open
    └── HandlerError                base of what handlers raise to steer retries
        ├── Retry                   retry this event, optionally after `after_s`
        └── NonRetryable            do not retry; dead-letter now

Lower-level errors (httpx, jwt, websockets, realtime) are translated at the module that
touches them, with ``raise ... from exc``. No message ever contains a secret or a token.
What a retry can fix is decided once, here: ``is_transient``.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Root of every error the worker raises on purpose."""


class ConfigError(WorkerError):
    """The settings are invalid; ``problems`` lists each one with its fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class TokenError(WorkerError):
    """A Clerk session token could not be obtained or used."""


class TokenRejected(TokenError):
    """A token failed verification; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class TokenUnavailable(TokenError):
    """Clerk did not give a token this time; retry (after ``retry_after_s`` if set)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        self.status = status
        self.retry_after_s = retry_after_s
        super().__init__(message)


class SessionEnded(TokenError):
    """The Clerk session no longer exists or has ended; a new session is needed."""


class SessionUnobtainable(TokenError):
    """No session can be had for the service user: the user is gone or not a member of
    the org, the Native API is off, Clerk refuses the secret key. ``reason`` is a short
    machine-readable code; the message names the fix."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class RealtimeError(WorkerError):
    """The Realtime connection or a channel failed."""


class JoinRefused(RealtimeError):
    """The server refused to join a channel; ``reason`` is the server's own text."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"joining {topic} was refused: {reason}")


class DataApiError(WorkerError):
    """A call to the Supabase data API failed."""


class CheckpointFenced(DataApiError):
    """The database refused a checkpoint save: its lease epoch is no longer the lease's.
    Retrying cannot help; the worker has lost the lease."""


class StorageError(WorkerError):
    """A call to Supabase Storage failed; ``status`` is the platform's status code (403 when
    RLS refused, 404 for an absent or hidden object), None when Storage was not reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ResourceError(WorkerError):
    """A handler module's ``Lifespan`` failed to open, or was read while not open."""


class HandlerError(WorkerError):
    """Base of the exceptions a handler raises to tell the dispatcher what to do."""


class Retry(HandlerError):
    """Retry this event (after ``after_s`` seconds if given), within the retry budget."""

    def __init__(self, message: str = "retry requested", *, after_s: float | None = None) -> None:
        self.after_s = after_s
        super().__init__(message)


class NonRetryable(HandlerError):
    """The event cannot succeed; dead-letter it without further attempts."""


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call later can succeed: Clerk or the data API unreachable
    or refusing for now, a token that failed a check (a key rotation or a fixed claim
    recovers by itself), a timeout. Never an ended session, a configuration error or a
    handler's own verdict: those need a person or are the dispatcher's to decide."""
    if isinstance(
        exc, SessionEnded | SessionUnobtainable | ConfigError | HandlerError | CheckpointFenced
    ):
        return False
    return isinstance(exc, TokenError | DataApiError | RealtimeError | TimeoutError)


def sole_error(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The one ``Exception`` inside ``group`` (nested task groups flattened), else None.

    anyio task groups wrap even a single failure in an ``ExceptionGroup``; callers that
    promise "ends with that error" unwrap it with this, and leave real multi-failures be.
    """
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if len(leaves) == 1 and isinstance(leaves[0], Exception):
        return leaves[0]
    return None
