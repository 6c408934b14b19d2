"""The observability HTTP server, over a real socket on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from worker.observe.http import HealthChecks, HttpServer
from worker.observe.metrics import Metrics

pytestmark = pytest.mark.anyio


class Served:
    def __init__(self, port: int, checks: HealthChecks, client: httpx.AsyncClient) -> None:
        self.port, self.checks, self.client = port, checks, client

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(f"http://127.0.0.1:{self.port}{path}")

    async def raw(self, request: bytes) -> bytes:
        """Send bytes as they are, end the request side, read the whole answer."""
        chunks = []
        async with await anyio.connect_tcp("127.0.0.1", self.port) as stream:
            await stream.send(request)
            await stream.send_eof()
            try:
                while True:
                    chunks.append(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        return b"".join(chunks)


def status_ok() -> Mapping[str, Any]:
    return {"token": {"state": "fresh"}}


@asynccontextmanager
async def serving(status: Callable[[], Mapping[str, Any]] = status_ok) -> AsyncIterator[Served]:
    registry = CollectorRegistry()
    Metrics(registry, org_id="org_2abc").init_topics(["events"])
    checks = HealthChecks()
    server = HttpServer(registry, checks, status, host="127.0.0.1", port=0)
    async with anyio.create_task_group() as tg, httpx.AsyncClient() as client:
        with anyio.fail_after(5):
            port = await tg.start(server.serve)
            yield Served(port, checks, client)
        tg.cancel_scope.cancel()


async def test_started_reports_the_bound_ephemeral_port() -> None:
    async with serving() as s:
        assert s.port > 0


async def test_metrics_serves_the_prometheus_text_of_the_registry() -> None:
    async with serving() as s:
        response = await s.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'realtime_worker_org_info{org="org_2abc"} 1.0' in response.text
    assert response.headers["connection"] == "close"


async def test_healthz_answers_while_the_loop_is_alive() -> None:
    async with serving() as s:
        response = await s.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"alive": True})


async def test_readyz_is_200_when_every_check_passes() -> None:
    async with serving() as s:
        s.checks.add("token.fresh", lambda: None)
        response = await s.get("/readyz")
    assert (response.status_code, response.json()) == (
        200,
        {"ready": True, "checks": ["token.fresh"]},
    )


async def test_readyz_is_503_naming_each_failed_check_and_its_reason() -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    async with serving() as s:
        s.checks.add("token.fresh", lambda: None)
        s.checks.add("channels.joined", lambda: "0/1 joined")
        s.checks.add("dispatch.progressing", broken)
        response = await s.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "failed": {
            "channels.joined": "0/1 joined",
            "dispatch.progressing": "check raised RuntimeError",
        },
    }


def test_check_names_are_unique() -> None:
    checks = HealthChecks()
    checks.add("a", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        checks.add("a", lambda: None)


async def test_status_returns_the_injected_snapshot_and_500_when_it_fails() -> None:
    async with serving() as s:
        assert (await s.get("/status?x=1")).json() == {"token": {"state": "fresh"}}

    def failing() -> Mapping[str, Any]:
        raise RuntimeError("snapshot bug")

    async with serving(failing) as s:
        assert (await s.get("/status")).status_code == 500


async def test_unknown_paths_are_404_and_other_methods_405() -> None:
    async with serving() as s:
        assert (await s.get("/nope")).status_code == 404
        response = await s.client.post(f"http://127.0.0.1:{s.port}/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_oversized_and_malformed_requests_are_refused() -> None:
    async with serving() as s:
        huge = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        assert (await s.raw(huge)).startswith(b"HTTP/1.1 431 ")
        assert (await s.raw(b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        assert (await s.raw(b"GET /healthz HTTP/1.1\r\n")).startswith(b"HTTP/1.1 400 ")
