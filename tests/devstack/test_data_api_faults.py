"""The data API stand-in's scripted outages: errors, hangs, drops, targets, HTTP controls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import httpx
import pytest
from aiohttp import web

from devstack.gateway import ApiKeys, Gateway
from devstack.jwt import Keyring
from devstack.rest import DataApi
from tests.devstack.test_data_api import ANON, Orgs, keyring, orgs, rsa_key  # noqa: F401

pytestmark = pytest.mark.anyio

CONTROL = "/__devstack/rest"


@dataclass
class Served:
    api: DataApi
    http: httpx.AsyncClient  # base URL: the server root


@pytest.fixture
async def served(database_url: str, keyring: Keyring) -> AsyncIterator[Served]:  # noqa: F811
    api = DataApi(database_url=database_url, keyring=keyring)
    app = web.Application()
    Gateway(ApiKeys.generate(keyring.secret), keyring).install(app)
    api.add_routes(app)
    await api.start()
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10) as http:
            yield Served(api, http)
    finally:
        await api.close()
        await runner.cleanup()


def _headers(orgs: Orgs) -> dict[str, str]:  # noqa: F811
    return {"apikey": ANON, "Authorization": f"Bearer {orgs.token(orgs.a)}"}


async def _position(s: Served, orgs: Orgs) -> httpx.Response:  # noqa: F811
    return await s.http.post("/rest/v1/rpc/outbox_position", json={}, headers=_headers(orgs))


async def _events(s: Served, orgs: Orgs) -> httpx.Response:  # noqa: F811
    return await s.http.get("/rest/v1/org_events?select=id", headers=_headers(orgs))


async def test_fail_next_answers_503_as_postgrest_without_its_database_then_recovers(
    served: Served,
    orgs: Orgs,  # noqa: F811
) -> None:
    served.api.fail_next(2)
    for _ in range(2):
        failed = await _position(served, orgs)
        assert failed.status_code == 503
        assert failed.json()["code"] == "PGRST001"
    ok = await _position(served, orgs)
    assert ok.status_code == 200, ok.text
    assert ok.json()[0]["head"] == max(orgs.event_ids)
    assert served.api.faults.played == 2


async def test_a_targeted_fault_only_hits_its_path_and_other_statuses_answer_as_the_gateway(
    served: Served,
    orgs: Orgs,  # noqa: F811
) -> None:
    served.api.fail_next(1, 502, target="rpc/outbox_position")
    assert (await _events(served, orgs)).status_code == 200  # not the target: untouched
    failed = await _position(served, orgs)
    assert failed.status_code == 502
    assert failed.json() == {
        "message": "An invalid response was received from the upstream server",
        "hint": None,
    }
    assert (await _position(served, orgs)).status_code == 200


async def test_faults_play_before_authentication_and_in_order(served: Served) -> None:
    served.api.fail_next(1, 504)
    served.api.fail_next(1, 503)
    # Past the gateway (a project key) but with no user token: PostgREST would refuse.
    key = {"apikey": ANON}
    first = await served.http.get("/rest/v1/org_events", headers=key)
    second = await served.http.get("/rest/v1/org_events", headers=key)
    third = await served.http.get("/rest/v1/org_events", headers=key)
    assert [first.status_code, second.status_code, third.status_code] == [504, 503, 401]


async def test_a_hang_holds_the_request_then_answers(
    served: Served,
    orgs: Orgs,  # noqa: F811
) -> None:
    served.api.hang_next(1, 0.5)
    started = time.monotonic()
    response = await _position(served, orgs)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.5


async def test_a_hang_then_drop_closes_the_connection_without_an_answer(
    served: Served,
    orgs: Orgs,  # noqa: F811
) -> None:
    served.api.hang_next(1, 0.1, then="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await _position(served, orgs)
    assert (await _position(served, orgs)).status_code == 200


async def test_clear_releases_a_running_hang_at_once(
    served: Served,
    orgs: Orgs,  # noqa: F811
) -> None:
    served.api.hang_next(1, 60)
    served.api.fail_next(5)
    answers: list[int] = []

    async def call() -> None:
        answers.append((await _position(served, orgs)).status_code)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            while served.api.faults.played == 0:  # noqa: ASYNC110 - no event to await
                await anyio.sleep(0.01)
            served.api.clear_faults()
    assert answers == [200]
    assert served.api.faults.pending() == []


async def test_the_http_controls_script_and_clear_faults(
    served: Served,
    orgs: Orgs,  # noqa: F811
) -> None:
    http = served.http
    scripted = await http.post(
        f"{CONTROL}/faults/fail", json={"count": 3, "status": 500, "target": "/org_events/"}
    )
    assert scripted.status_code == 200
    assert scripted.json()["pending"][0] | {"count": 3} == {
        "count": 3,
        "status": 500,
        "hang_seconds": 0.0,
        "then": "answer",
        "target": "org_events",
    }
    assert (await _events(served, orgs)).status_code == 500
    state = (await http.get(f"{CONTROL}/faults")).json()
    assert state["played"] == 1
    assert state["pending"][0]["count"] == 2
    hang = await http.post(f"{CONTROL}/faults/hang", json={"seconds": 30, "then": "drop"})
    assert hang.json()["pending"][1]["then"] == "drop"
    cleared = await http.post(f"{CONTROL}/faults/clear")
    assert cleared.json()["pending"] == []
    assert (await _events(served, orgs)).status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("faults/fail", {"status": 200}),
        ("faults/fail", {"status": "x"}),
        ("faults/hang", {}),
        ("faults/hang", {"seconds": 1, "then": "explode"}),
    ],
)
async def test_bad_control_input_answers_400(
    served: Served, route: str, body: dict[str, object]
) -> None:
    response = await served.http.post(f"{CONTROL}/{route}", json=body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert served.api.faults.pending() == []
