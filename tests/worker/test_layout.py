"""The architecture as the tree shows it: one folder per part, small modules and functions,
a deliberate public surface per package, and a module table in docs/architecture.md that
names every module."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "worker"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40
MAX_TOP_LEVEL_MODULES = 15
PARTS = (
    "tokens",
    "realtime",
    "dispatch",
    "delivery",
    "observe",
    "settings",
    "events",
    "handlers",
    "broker",
)

PUBLIC = {
    "worker": [
        "Context",
        "Event",
        "HandlerRegistry",
        "NonRetryable",
        "Retry",
        "Settings",
        "Worker",
        "WorkerError",
        "__version__",
        "on",
        "running",
    ],
    "worker.tokens": [
        "ClerkTokenSource",
        "FileTokenSource",
        "Listener",
        "RefreshResult",
        "Token",
        "TokenManager",
        "TokenMetrics",
        "TokenSource",
        "TokenState",
        "TokenVerifier",
        "Verifier",
        "source_from_settings",
    ],
    "worker.tokens.sources": [
        "BrokerTokenSource",
        "ClerkTokenSource",
        "FileTokenSource",
        "TokenSource",
        "describe_source",
        "source_from_settings",
    ],
    "worker.tokens.sessions": [
        "ClerkSessionApi",
        "Obtained",
        "Obtainer",
        "RenewalResult",
        "SessionInfo",
        "SessionKeeper",
        "SessionMetrics",
        "SessionState",
        "SessionTokenSource",
        "managed_session",
    ],
    "worker.broker": [
        "Broker",
        "BrokerSettings",
        "CachedToken",
        "Caller",
        "Denied",
        "DenyReason",
        "Identify",
        "OrgEntry",
        "Orgs",
        "ServiceAccountVerifier",
        "SourceFactory",
        "TokenCache",
        "hash_credential",
        "load_orgs",
        "new_credential",
    ],
    "worker.realtime": [
        "ChannelHandle",
        "ChannelState",
        "CloseReason",
        "Intake",
        "IntakeMetrics",
        "JoinResult",
        "LiveGate",
        "MessageSink",
        "RealtimeAdapter",
        "ReconnectReason",
        "Supervisor",
        "SupervisorMetrics",
        "SupervisorStatistics",
        "SupervisorTiming",
    ],
    "worker.dispatch": [
        "ContextMaker",
        "DispatchMetrics",
        "DispatchStatistics",
        "Dispatcher",
        "HandledResult",
        "OnDone",
        "Outcome",
    ],
    "worker.delivery": [
        "CatchUp",
        "CatchUpMetrics",
        "CatchUpStatistics",
        "Checkpoint",
        "CheckpointMetrics",
        "Checkpointer",
        "Delivery",
        "DeliveryMetrics",
        "Ledger",
        "Outbox",
        "OutboxOperation",
        "OutboxStore",
        "Position",
        "Progress",
        "SeenIds",
        "finisher",
    ],
    "worker.lease": [
        "Leadership",
        "LeadershipStatistics",
        "LeaseGrant",
        "LeaseMetrics",
        "LeaseStore",
        "RenewResult",
        "Term",
    ],
    "worker.observe": [
        "HealthChecks",
        "HttpServer",
        "JsonFormatter",
        "Metrics",
        "configure_logging",
        "redact",
    ],
    "worker.settings": ["CLERK_MIN_EXPIRES_IN_S", "SecretStr", "Settings"],
    "worker.events": [
        "REJECT_REASONS",
        "Event",
        "Limits",
        "RejectReason",
        "RejectedEvent",
        "channel_topic",
        "parse_broadcast",
    ],
    "worker.handlers": [],
    "worker.testing": [
        "Broadcast",
        "Delivered",
        "FakeClock",
        "HandlerHarness",
        "Recorder",
        "RecordingMetrics",
        "eventually",
        "make_context",
        "make_event",
    ],
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_each_package_exports_exactly_its_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it lacks"


@pytest.mark.parametrize("part", PARTS)
def test_each_part_is_a_folder_whose_init_says_what_it_owns(part: str) -> None:
    init = PACKAGE / part / "__init__.py"
    assert init.is_file(), f"worker/{part}/ is not a package"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert len(doc.split()) >= 25, f"worker/{part}/__init__.py needs a docstring: owns / never"


def test_the_top_level_holds_at_most_fifteen_modules() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(top)


def test_no_module_is_over_300_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these modules: {long}"


def test_no_function_is_over_40_lines() -> None:
    long: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = size
    assert long == {}, f"split these functions: {long}"


def test_the_architecture_doc_lists_every_module() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"`(worker(?:\.[a-z_]+)+)`", doc))
    modules = {_dotted(p) for p in _modules()} - {"worker"}
    missing = sorted(m for m in modules if m not in listed and not m.endswith("__main__"))
    assert missing == [], f"docs/architecture.md does not name: {missing}"
    stale = sorted(name for name in listed if name not in modules and not _resolves(name))
    assert stale == [], f"docs/architecture.md names what does not exist: {stale}"


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is an attribute of an importable module (``worker.app.Worker``)."""
    module, _, name = dotted.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False
