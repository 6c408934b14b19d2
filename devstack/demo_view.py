"""The live terminal view of ``python -m devstack demo`` (``rich``), redrawn twice a second.

It only reads a ``DemoState`` that ``devstack.demo`` keeps up to date from the worker's
``/status``, ``/metrics`` and log lines; it never talks to anything itself.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from rich.console import Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from devstack.demo import DemoState

REFRESH_S = 0.5
_STATE_STYLES = {"joined": "bold green", "joining": "yellow", "errored": "bold red"}
_TOKEN_STYLES = {"fresh": "bold green", "refreshing": "yellow", "failing": "bold red"}


def _payload(payload: dict[str, Any] | None, width: int = 60) -> str:
    if payload is None:
        return "-"
    text = json.dumps(payload, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _token_panel(state: DemoState) -> Panel:
    expires = state.token_expires_in_s
    bar = Text()
    if expires is not None and state.token_seconds > 0:
        filled = max(0, min(20, round(20 * expires / state.token_seconds)))
        bar.append("█" * filled, style="green" if expires > 3 else "red")
        bar.append("░" * (20 - filled), style="dim")
    grid = Table.grid(padding=(0, 2))
    grid.add_row("state", Text(state.token_state, style=_TOKEN_STYLES.get(state.token_state, "")))
    grid.add_row(
        "expires in",
        Text.assemble(f"{expires:5.1f} s  " if expires is not None else "    - s  ", bar),
    )
    grid.add_row("lifetime", f"{state.token_seconds} s")
    grid.add_row("tokens minted", f"{state.tokens_minted} (rotations: {state.token_rotations})")
    grid.add_row("refresh failures", str(state.token_failures))
    session = state.session
    left = session.get("expires_in_s")
    grid.add_row(
        "session", f"{session.get('session_id') or '-'} ({session.get('obtained') or '-'})"
    )
    grid.add_row("session ends in", "-" if left is None else f"{left:.0f} s")
    grid.add_row(
        "session renewals",
        f"{session.get('renewals', 0)} (replaced: {session.get('replacements', 0)})",
    )
    return Panel(grid, title="Clerk session token (org A's worker)", border_style="cyan")


def _channels_table(state: DemoState) -> Table:
    table = Table(
        title=f"Org A ({state.org_a.org_id}): private channels org:<org>:<topic>", expand=True
    )
    table.add_column("topic", no_wrap=True)
    table.add_column("state")
    table.add_column("inserted", justify="right")
    table.add_column("handled", justify="right")
    table.add_column("latest event")
    table.add_column("latest payload", overflow="ellipsis", no_wrap=True)
    for topic, view in state.topics.items():
        table.add_row(
            topic,
            Text(view.channel_state, style=_STATE_STYLES.get(view.channel_state, "")),
            str(view.inserted),
            Text(str(view.handled), style="bold"),
            view.latest_event or "-",
            _payload(view.latest_payload),
        )
    return table


def _isolation_panel(state: DemoState) -> Panel:
    received = state.org_b_received
    text = Text.assemble(
        f"org B ({state.org_b.org_id}) events inserted: ",
        (str(state.org_b_inserted), "bold"),
        "    received by org A's worker: ",
        (str(received), "bold green" if received == 0 else "bold red on white"),
        "\n",
        (
            "Org B's events go out on org:<org B>:*, channels that RLS lets only org B's "
            "members join.",
            "dim",
        ),
    )
    return Panel(text, title="Isolation", border_style="green" if received == 0 else "red")


def _header(state: DemoState) -> Text:
    worker = (
        f"worker pid {state.worker_pid}"
        if state.worker_up
        else f"worker starting... (pid {state.worker_pid})"
    )
    return Text.assemble(
        ("realtime-worker demo", "bold"),
        f"   {state.elapsed_s:4.0f} s   {worker}   socket ",
        ("connected", "green") if state.socket_connected else ("disconnected", "red"),
        f"   reconnects {state.reconnects}\n",
        f"status  {state.status_url}\nmetrics {state.metrics_url}\n",
        f"Supabase (stand-in) {state.supabase_url}",
    )


def render(state: DemoState) -> RenderableType:
    """The whole screen for the current ``state``."""
    logs = Text("\n".join(state.log_tail) or "-", style="dim")
    return Group(
        _header(state),
        _token_panel(state),
        _channels_table(state),
        _isolation_panel(state),
        Panel(logs, title="worker log (token refreshes, warnings)", border_style="dim"),
        Text("Ctrl-C stops the worker, the stack and its Postgres.", style="italic"),
    )


async def live(state: DemoState) -> None:
    """Redraw ``render(state)`` every ``REFRESH_S`` until cancelled."""
    with Live(render(state), auto_refresh=False, transient=False) as screen:
        while True:
            screen.update(render(state), refresh=True)
            await anyio.sleep(REFRESH_S)
