"""``python -m devstack demo``: the whole system, live, on one machine.

Starts the local stack (embedded Postgres unless a database URL is given), provisions two
organizations in the Clerk stand-in (A and B, each with a service user holding
``org:worker`` and an active session), runs the worker for org A as a separate process
(``python -m worker run``, short-lived tokens so rotations show), inserts a steady trickle
of outbox events for both orgs, and shows what happens: token time-to-expiry and
rotations, channel states, events handled per topic with their latest payloads, and org
B's events never reaching org A's worker.

The devstack never imports ``worker``: it watches the worker from outside, through its
``/status`` and ``/metrics`` endpoints and its JSON log lines (``examples.demo_handlers``
logs every event it handles). Ctrl-C (or ``--duration``) stops the trickle, sends the
worker SIGTERM and waits for it, then stops the stack and its Postgres.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
from anyio.abc import Process
from prometheus_client.parser import text_string_to_metric_families

from devstack import postgres
from devstack.clerk import Clerk
from devstack.stack import Stack, StackConfig

log = logging.getLogger("devstack.demo")

ROOT = Path(__file__).resolve().parent.parent
DEMO_HANDLERS = "examples.demo_handlers"
HANDLED_MESSAGE = "demo handled"  # examples/demo_handlers.py logs each event under this
TOPICS = ("events", "jobs")
#: (topic, event name) inserted in turn for each org.
EVENT_KINDS = (("events", "task.created"), ("jobs", "job.queued"), ("events", "task.done"))
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0  # the worker's drain deadline on SIGTERM
STOP_WAIT_S = STOP_GRACE_S + 20.0  # then SIGKILL
POLL_INTERVAL_S = 0.5
#: Starts ``python -m worker run`` so that, on Linux, the worker gets SIGTERM if the demo
#: dies without stopping it (killed, crashed): nothing is left running either way.
WORKER_LAUNCHER = """\
import ctypes, os, signal, sys
if sys.platform == "linux":
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):  # the demo died before prctl took effect
        sys.exit(1)
os.execv(sys.executable, [sys.executable, "-m", "worker", "run"])
"""
#: Settings the worker must not inherit from the caller's shell: the demo sets its own.
_INHERITED_PREFIXES = ("SUPABASE_", "CLERK_", "WORKER_", "REALTIME_")


@dataclass(frozen=True)
class DemoOptions:
    """What ``python -m devstack demo`` was asked to do."""

    database_url: str | None = None
    token_seconds: int = 20
    session_seconds: int = 90  # the Clerk instance's session lifetime: renewals show
    duration_s: float | None = None
    headless: bool = False
    events_per_second: float = 2.0  # per org

    @property
    def refresh_margin_s(self) -> int:
        """Refresh this long before ``exp``: 40 % of the lifetime, at least 1 s."""
        return max(1, round(self.token_seconds * 0.4))


@dataclass(frozen=True)
class DemoOrg:
    """One provisioned organization: its service user and that user's active session."""

    name: str
    org_id: str
    user_id: str
    session_id: str


def provision_org(clerk: Clerk, name: str, role: str = "org:worker") -> DemoOrg:
    """A Clerk org with a service user holding ``role`` and an active session in it.

    Against real Clerk the same three steps are the dashboard's (or the Backend API's):
    create the user, add it to the org with a role, sign it in (see README.md).
    """
    user = clerk.create_user(first_name=f"{name} worker")
    org = clerk.create_organization(name)
    clerk.add_membership(org["id"], user["id"], role)
    session = clerk.create_session(user["id"], active_organization_id=org["id"])
    return DemoOrg(name, org["id"], user["id"], session["id"])


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host`` (the worker binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_environment(
    stack_env: dict[str, str], org: DemoOrg, options: DemoOptions, http_port: int
) -> dict[str, str]:
    """The environment of ``python -m worker run`` serving ``org`` on the stack."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    base.pop("ORG_ID", None)
    pythonpath = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    keys = (
        "SUPABASE_URL",
        "SUPABASE_PUBLISHABLE_KEY",
        "CLERK_API_URL",
        "CLERK_SECRET_KEY",
        "CLERK_ISSUER",
        "CLERK_JWKS_URL",
    )
    return (
        base
        | {k: stack_env[k] for k in keys}
        | {
            "PYTHONPATH": pythonpath,
            "ORG_ID": org.org_id,
            # The worker owns its session: the given one first, then its own renewals.
            "CLERK_USER_ID": org.user_id,
            "CLERK_SESSION_ID": org.session_id,
            "CLERK_TOKEN_EXPIRES_IN_SECONDS": str(options.token_seconds),
            "WORKER_TOKEN_REFRESH_MARGIN_SECONDS": str(options.refresh_margin_s),
            "WORKER_TOPICS": ",".join(TOPICS),
            "WORKER_HANDLERS": DEMO_HANDLERS,
            "WORKER_HTTP_HOST": "127.0.0.1",
            "WORKER_HTTP_PORT": str(http_port),
            "WORKER_SHUTDOWN_GRACE_SECONDS": str(STOP_GRACE_S),
            "WORKER_CONSUMER": "demo",
            "WORKER_LOG_LEVEL": "INFO",
        }
    )


# -- what the view shows ---------------------------------------------------------------


@dataclass
class TopicView:
    """One topic of org A: its channel and the events handled on it."""

    channel_state: str = "closed"
    last_error: str | None = None
    inserted: int = 0
    handled: int = 0
    latest_event: str | None = None
    latest_payload: dict[str, Any] | None = None


@dataclass
class DemoState:
    """Everything the live view and the headless lines show, updated as things happen."""

    org_a: DemoOrg
    org_b: DemoOrg
    supabase_url: str
    status_url: str
    metrics_url: str
    token_seconds: int
    started_monotonic: float = field(default_factory=time.monotonic)
    worker_pid: int | None = None
    worker_up: bool = False  # /status answered at least once
    worker_exit: int | None = None
    token_state: str = "starting"
    session: dict[str, Any] = field(default_factory=dict)  # /status "session"
    token_expires_in_s: float | None = None
    tokens_minted: int = 0
    token_failures: int = 0
    socket_connected: bool = False
    reconnects: int = 0
    topics: dict[str, TopicView] = field(default_factory=lambda: {t: TopicView() for t in TOPICS})
    org_b_inserted: int = 0
    org_b_handled_by_a: int = 0  # events of org B the worker's handlers saw: always 0
    org_b_rejected_by_a: int = 0  # frames of another org the worker refused: always 0
    log_tail: deque[str] = field(default_factory=lambda: deque(maxlen=6))
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_monotonic

    @property
    def token_rotations(self) -> int:
        """Tokens minted after the first one."""
        return max(0, self.tokens_minted - 1)

    @property
    def org_a_inserted(self) -> int:
        return sum(t.inserted for t in self.topics.values())

    @property
    def org_a_handled(self) -> int:
        return sum(t.handled for t in self.topics.values())

    @property
    def org_b_received(self) -> int:
        return self.org_b_handled_by_a + self.org_b_rejected_by_a


def summary_line(state: DemoState, prefix: str = "demo") -> str:
    """One ``key=value`` line: what ``--headless`` prints every second, and at the end."""
    expires = "-" if state.token_expires_in_s is None else f"{state.token_expires_in_s:.1f}"
    channels = ",".join(f"{t}:{v.channel_state}" for t, v in state.topics.items())
    handled = ",".join(f"{t}:{v.handled}" for t, v in state.topics.items())
    return (
        f"{prefix} t={state.elapsed_s:.0f}s worker={'up' if state.worker_up else 'starting'} "
        f"token={state.token_state} expires_in_s={expires} tokens_minted={state.tokens_minted} "
        f"token_rotations={state.token_rotations} {session_summary(state)} "
        f"channels={channels} handled={handled} "
        f"org_a_inserted={state.org_a_inserted} org_a_handled={state.org_a_handled} "
        f"org_b_inserted={state.org_b_inserted} org_b_received={state.org_b_received}"
    )


def session_summary(state: DemoState) -> str:
    """``session=... session_expires_in_s=... session_renewals=...`` for the summary line."""
    session = state.session
    left = session.get("expires_in_s")
    renewals = int(session.get("renewals") or 0) + int(session.get("replacements") or 0)
    return (
        f"session={session.get('session_id') or '-'} "
        f"session_obtained={session.get('obtained') or '-'} "
        f"session_expires_in_s={'-' if left is None else f'{left:.0f}'} "
        f"session_renewals={renewals}"
    )


# -- reading the worker from outside ---------------------------------------------------


def apply_status(state: DemoState, status: dict[str, Any]) -> None:
    """Copy the worker's ``/status`` JSON into ``state`` (missing parts are left as they are)."""
    token = status.get("token") or {}
    state.session = dict(status.get("session") or state.session)
    state.token_state = str(token.get("state", state.token_state))
    expires = token.get("expires_in_s")
    state.token_expires_in_s = float(expires) if isinstance(expires, int | float) else None
    state.tokens_minted = int(token.get("refreshes", state.tokens_minted) or 0)
    state.token_failures = int(token.get("failures", state.token_failures) or 0)
    realtime = status.get("realtime") or {}
    state.socket_connected = bool(realtime.get("connected", False))
    for channel in realtime.get("channels") or ():
        view = state.topics.get(str(channel.get("topic")))
        if view is not None:
            view.channel_state = str(channel.get("state", "?"))
            view.last_error = channel.get("last_error")


def apply_metrics(state: DemoState, text: str) -> None:
    """Copy the counters the view shows from the worker's ``/metrics`` text."""
    reconnects = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "realtime_worker_events_handled_total":
                view = state.topics.get(labels.get("topic", ""))
                if view is not None and labels.get("result") == "success":
                    view.handled = int(sample.value)
            elif sample.name == "realtime_worker_events_rejected_total":
                if labels.get("reason") == "wrong_org":
                    state.org_b_rejected_by_a = int(sample.value)
            elif sample.name == "realtime_worker_realtime_reconnects_total":
                reconnects += sample.value
    state.reconnects = int(reconnects)


def apply_log_line(state: DemoState, line: str) -> None:
    """Take one stderr line of the worker: a handled event, a notable log line, or text."""
    state.stderr_tail.append(line)
    try:
        record = json.loads(line)
    except ValueError:
        return
    if not isinstance(record, dict):
        return
    demo = record.get("demo")
    if record.get("msg") == HANDLED_MESSAGE and isinstance(demo, dict):
        if demo.get("org_id") != state.org_a.org_id:
            state.org_b_handled_by_a += 1
            return
        view = state.topics.get(str(demo.get("topic")))
        if view is not None:
            view.latest_event = str(demo.get("event"))
            payload = demo.get("payload")
            view.latest_payload = payload if isinstance(payload, dict) else None
        return
    level, msg = record.get("level", ""), str(record.get("msg", ""))
    if level in ("WARNING", "ERROR", "CRITICAL") or msg in (
        "token refreshed",
        "worker started",
        "Clerk session in use",
        "old Clerk session revoked",
    ):
        stamp = str(record.get("ts", ""))[11:19]
        state.log_tail.append(f"{stamp} {level:<7} {msg}")


async def _lines(stream: anyio.abc.ByteReceiveStream) -> AsyncIterator[str]:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")
        if len(buffer) > 1_048_576:  # a runaway line: keep the view alive, drop it
            buffer = b""
    if buffer:
        yield buffer.decode("utf-8", "replace")


async def follow_stderr(process: Process, state: DemoState) -> None:
    """Feed every stderr line of the worker into ``state`` until the stream ends."""
    assert process.stderr is not None
    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError):
        async for line in _lines(process.stderr):
            apply_log_line(state, line)


async def poll_worker(state: DemoState, http: httpx.AsyncClient, up: anyio.Event) -> None:
    """Read ``/status`` and ``/metrics`` every ``POLL_INTERVAL_S``; set ``up`` once answered."""
    while True:
        try:
            status = (await http.get(state.status_url)).json()
            metrics = (await http.get(state.metrics_url)).text
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet, or going away: the view shows the last known values
        else:
            if isinstance(status, dict):
                apply_status(state, status)
            apply_metrics(state, metrics)
            state.worker_up = True
            up.set()
        await anyio.sleep(POLL_INTERVAL_S)


# -- the trickle of events -------------------------------------------------------------


async def produce_events(database_url: str, state: DemoState, per_second: float) -> None:
    """Insert one outbox event per org every ``1/per_second`` s, on a fixed schedule."""
    interval = 1.0 / per_second
    conn = await asyncpg.connect(database_url)
    try:
        start = time.monotonic()
        for n in range(1, sys.maxsize):
            topic, event = EVENT_KINDS[n % len(EVENT_KINDS)]
            for org in (state.org_a, state.org_b):
                payload = {"n": n, "org": org.name, "title": f"{org.name} {event} #{n}"}
                await conn.execute(
                    "insert into org_events (org_id, topic, event, payload) "
                    "values ($1, $2, $3, $4)",
                    org.org_id,
                    topic,
                    event,
                    json.dumps(payload),
                )
            state.topics[topic].inserted += 1
            state.org_b_inserted += 1
            await anyio.sleep(max(0.0, start + n * interval - time.monotonic()))
    finally:
        with anyio.CancelScope(shield=True):
            await conn.close(timeout=5)


# -- the worker process ----------------------------------------------------------------


async def stop_worker(process: Process, state: DemoState) -> int:
    """SIGTERM (the worker drains and leaves its channels), wait, SIGKILL past the limit."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_WAIT_S):
            await process.wait()
        if process.returncode is None:
            log.warning("the worker did not stop within %.0f s; killing it", STOP_WAIT_S)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    code = process.returncode
    assert code is not None
    state.worker_exit = code
    return code


async def _watch_exit(process: Process, state: DemoState, done: anyio.Event) -> None:
    await process.wait()
    state.worker_exit = process.returncode
    done.set()


async def _stop_on_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()


async def _stop_after(seconds: float | None, stop: anyio.Event) -> None:
    if seconds is not None:
        await anyio.sleep(seconds)
        stop.set()


async def _headless(state: DemoState, out: Callable[[str], None]) -> None:
    next_at = time.monotonic()
    while True:
        next_at += 1.0
        await anyio.sleep(max(0.0, next_at - time.monotonic()))
        out(summary_line(state))


# -- the whole demo --------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(options: DemoOptions) -> int:
    """Run the demo until Ctrl-C/SIGTERM or ``duration_s``; 0 when it ran and stopped cleanly.

    A failure to start (e.g. ``DevstackError`` for an unreachable database) is raised as
    itself, not inside an ``ExceptionGroup``.
    """
    stop = anyio.Event()
    error: Exception | None = None
    code = 1
    async with anyio.create_task_group() as signals_tg:
        signals_tg.start_soon(_stop_on_signal, stop)
        try:
            _say("demo: starting the local stack (Postgres, Supabase and Clerk stand-ins)...")
            config = StackConfig(
                database_url=options.database_url,
                clerk_session_lifetime_s=options.session_seconds,
            )
            async with Stack(config) as stack:
                code = 0 if stop.is_set() else await _with_stack(stack, options, stop)
        except Exception as exc:  # re-raised below, once the signal task is gone
            error = exc
        finally:
            signals_tg.cancel_scope.cancel()
    _say("demo: stopped; the stack and its Postgres are gone")
    if error is not None:
        raise error
    return code


async def _with_stack(stack: Stack, options: DemoOptions, stop: anyio.Event) -> int:
    org_a = provision_org(stack.clerk, "Org A")
    org_b = provision_org(stack.clerk, "Org B")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    state = DemoState(
        org_a=org_a,
        org_b=org_b,
        supabase_url=stack.supabase_url,
        status_url=f"{base}/status",
        metrics_url=f"{base}/metrics",
        token_seconds=options.token_seconds,
    )
    env = worker_environment(stack.env, org_a, options, port)
    process = await anyio.open_process(
        [sys.executable, "-c", WORKER_LAUNCHER, str(os.getpid())],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # the worker logs to stderr
        stderr=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C reaches the demo only; it stops the worker in order
    )
    state.worker_pid = process.pid
    _say(
        f"demo: database {postgres.describe(stack.database_url)}; "
        f"org A = {org_a.org_id}, org B = {org_b.org_id}; worker for org A started "
        f"(pid {process.pid}, tokens of {options.token_seconds} s refreshed "
        f"{options.refresh_margin_s} s before expiry); status at {state.status_url}, "
        f"metrics at {state.metrics_url}"
    )
    try:
        outcome = await _supervise(stack, options, state, process, stop)
    finally:
        with anyio.CancelScope(shield=True):
            await stop_worker(process, state)
            await process.aclose()
    return _report(state, outcome)


async def _supervise(
    stack: Stack, options: DemoOptions, state: DemoState, process: Process, stop: anyio.Event
) -> str:
    """Run until stopped; ``stopped``, ``died`` (the worker exited) or ``no_answer``."""
    exited, up = anyio.Event(), anyio.Event()
    async with httpx.AsyncClient(timeout=2.0) as http, anyio.create_task_group() as tg:
        tg.start_soon(follow_stderr, process, state)
        tg.start_soon(_watch_exit, process, state, exited)
        tg.start_soon(poll_worker, state, http, up)
        tg.start_soon(_stop_after, options.duration_s, stop)
        tg.start_soon(produce_events, stack.database_url, state, options.events_per_second)
        if options.headless:
            tg.start_soon(_headless, state, _say)
        else:
            from devstack.demo_view import live  # noqa: PLC0415 - rich only for the live view

            tg.start_soon(live, state)
        with anyio.move_on_after(STARTUP_TIMEOUT_S):
            await _first(stop, exited, up)
        if up.is_set():
            await _first(stop, exited)
        tg.cancel_scope.cancel()
    if stop.is_set():
        return "stopped"
    return "died" if exited.is_set() else "no_answer"


async def _first(*events: anyio.Event) -> None:
    """Return as soon as one of ``events`` is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


def _report(state: DemoState, outcome: str) -> int:
    code = state.worker_exit
    if outcome == "stopped" and code == 0:
        _say(summary_line(state, prefix="demo finished:") + " worker_exit=0")
        return 0
    what = {
        "stopped": f"the worker exited with code {code} on SIGTERM (expected 0)",
        "died": f"the worker exited on its own with code {code}",
        "no_answer": f"the worker did not answer {state.status_url} in {STARTUP_TIMEOUT_S:.0f} s",
    }[outcome]
    tail = "\n".join(f"  {line}" for line in state.stderr_tail)
    sys.stderr.write(f"demo: {what}; its last log lines:\n{tail}\n")
    _say(summary_line(state, prefix="demo failed:") + f" worker_exit={code}")
    return 1
