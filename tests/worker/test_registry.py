"""HandlerRegistry, the on() mark and load_handlers."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from worker.context import Context
from worker.errors import ConfigError
from worker.events import Event
from worker.registry import HandlerRegistry, load_handlers, on


async def a(event: Event, ctx: Context) -> None:
    del event, ctx


async def b(event: Event, ctx: Context) -> None:
    del event, ctx


def test_matching_with_wildcards_and_case() -> None:
    reg = HandlerRegistry()
    reg.add("events", "invoice.paid", a)
    reg.add("events", "*", b)
    reg.add("*", "*", a)
    names = [r.name.rsplit(".", 1)[-1] for r in reg.handlers_for("events", "INVOICE.PAID")]
    assert names == ["a", "b", "a"]
    assert [r.handler for r in reg.handlers_for("tasks", "INSERT")] == [a]
    reg.validate(["events", "tasks"])


def test_registry_decorator_registers_and_marks() -> None:
    reg = HandlerRegistry()

    @reg.on("tasks", "INSERT")
    async def handler(event: Event, ctx: Context) -> None:
        del event, ctx

    assert [r.handler for r in reg.handlers_for("tasks", "insert")] == [handler]
    assert reg.handlers_for("tasks", "UPDATE") == ()


def test_validate_reports_every_problem_at_once() -> None:
    reg = HandlerRegistry()

    def sync_handler(event: Event, ctx: Context) -> None:
        del event, ctx

    reg.add("events", "*", sync_handler)
    reg.add("billing", "*", a)
    reg.add("events", "x", b)
    reg.add("events", "X", b)
    with pytest.raises(ConfigError) as info:
        reg.validate(["events"])
    text = "\n".join(info.value.problems)
    assert len(info.value.problems) == 3
    assert "sync_handler must be 'async def" in text
    assert "'billing', which is not in WORKER_TOPICS (events)" in text
    assert "registered twice" in text


def test_async_callable_objects_are_accepted() -> None:
    class Handler:
        async def __call__(self, event: Event, ctx: Context) -> None:
            del event, ctx

    reg = HandlerRegistry()
    reg.add("events", "*", Handler())
    reg.validate(["events"])


@pytest.mark.parametrize(("topic", "event"), [("", "*"), ("org:x:events", "*"), ("events", "")])
def test_bad_route_names_fail_at_decoration(topic: str, event: str) -> None:
    with pytest.raises(ConfigError):
        on(topic, event)


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    name = f"handlers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


MODULE = """
    from worker.registry import on
    from tests.worker.test_registry import a as reexported  # must not be registered

    @on("events", "invoice.paid")
    @on("tasks")
    async def marked(event, ctx):
        pass

    async def unmarked(event, ctx):
        pass
"""


def test_load_module_registers_its_marked_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = write_module(tmp_path, monkeypatch, MODULE)
    reg = load_handlers([name])
    assert sorted((r.topic, r.event) for r in reg.routes) == [
        ("events", "invoice.paid"),
        ("tasks", "*"),
    ]
    # A second registry loading the same module is independent (no hidden global).
    assert len(load_handlers([name]).routes) == 2
    assert len(reg.routes) == 2


def test_load_function_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_module(tmp_path, monkeypatch, MODULE)
    reg = load_handlers([f"{name}:unmarked", f"{name}:marked"])
    assert [(r.topic, r.event) for r in reg.routes] == [
        ("*", "*"),
        ("events", "invoice.paid"),
        ("tasks", "*"),
    ]


def test_load_errors_name_each_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_module(tmp_path, monkeypatch, MODULE)
    empty = write_module(tmp_path, monkeypatch, "x = 1\n")
    broken = write_module(tmp_path, monkeypatch, "raise RuntimeError('boom')\n")
    paths = ["no_such_module_xyz", f"{name}:missing", empty, broken, ":f"]
    with pytest.raises(ConfigError) as info:
        load_handlers(paths)
    problems = info.value.problems
    assert len(problems) == 5
    for path, problem in zip(paths, problems, strict=True):
        assert repr(path) in problem
    assert "RuntimeError('boom')" in problems[3]
    assert "no function decorated with @on" in problems[2]


def test_builtin_handlers_load() -> None:
    reg = load_handlers(["worker.handlers.log", "worker.handlers.webhook"])
    assert [(r.topic, r.event) for r in reg.routes] == [("*", "*"), ("*", "*")]
    reg.validate(["events"])


def test_lookups_see_routes_added_after_an_earlier_lookup() -> None:
    reg = HandlerRegistry()
    reg.add("events", "a", _handler)
    assert [r.event for r in reg.handlers_for("events", "a")] == ["a"]
    reg.add("*", "*", _handler)
    assert [r.event for r in reg.handlers_for("events", "a")] == ["a", "*"]


def test_remembered_lookups_stay_bounded_whatever_event_names_arrive() -> None:
    reg = HandlerRegistry()
    reg.add("events", "*", _handler)
    for n in range(HandlerRegistry.CACHE_SIZE * 3):
        assert len(reg.handlers_for("events", f"hostile.{n}")) == 1
    assert len(reg._cache) <= HandlerRegistry.CACHE_SIZE


async def _handler(event: object, ctx: object) -> None:
    pass


def test_policies_travel_with_the_marks_and_are_checked_at_validate() -> None:
    class Paid(BaseModel):
        amount: int

    @on("events", "invoice.paid", payload=Paid, timeout_s=2.5, max_attempts=2)
    async def typed(event: Event, ctx: Context) -> None:
        del event, ctx

    reg = HandlerRegistry()
    reg.add_marked(typed)
    [route] = reg.routes
    assert (route.policy.payload, route.policy.timeout_s, route.policy.max_attempts) == (
        Paid,
        2.5,
        2,
    )
    reg.validate(["events"])
    bad = HandlerRegistry()
    bad.on("events", payload=dict, timeout_s=True, max_attempts=1.5)(a)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        bad.validate(["events"])
    assert len(caught.value.problems) == 3
    assert "payload=<class 'dict'> must be a pydantic BaseModel class" in caught.value.problems[0]
