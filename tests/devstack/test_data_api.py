"""The data API stand-in behind the gateway, driven by the official clients (postgrest-py,
supabase-py).

Each test gets two fresh organisations (A and B) with seeded rows, so tests do not see
each other's data in the shared database; tokens are Clerk-like RS256 JWTs with a ``kid``
from the keyring's JWKS. The official clients run with both kinds of API key: the legacy
HS256 anon key signed by the project secret and the publishable key.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from postgrest import AsyncPostgrestClient, CountMethod
from postgrest.exceptions import APIError

from devstack.gateway import ApiKeys, Gateway
from devstack.jwt import Keyring
from devstack.rest import DataApi
from supabase import AsyncClientOptions, acreate_client

pytestmark = pytest.mark.anyio

SECRET = "devstack-data-api-test-secret-of-32-bytes"
KID = "clerk-test-kid"
FAR = 4102444800  # 2100-01-01
ANON = jwt.encode({"role": "anon", "iss": "supabase-demo", "exp": FAR}, SECRET, algorithm="HS256")
KEYS = ApiKeys.generate(SECRET)
KEY_KINDS = {"legacy": ANON, "publishable": KEYS.publishable}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keyring(rsa_key: rsa.RSAPrivateKey) -> Keyring:
    jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk.update(kid=KID, alg="RS256", use="sig")
    return Keyring(SECRET, jwks=lambda: {"keys": [jwk]})


@pytest.fixture(scope="module")
async def base_url(database_url: str, keyring: Keyring) -> AsyncIterator[str]:
    """The DataApi behind the gateway in an aiohttp app on a free loopback port."""
    api = DataApi(database_url=database_url, keyring=keyring)
    app = web.Application()
    Gateway(KEYS, keyring).install(app)
    api.add_routes(app)
    await api.start()
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await api.close()


@dataclass
class Orgs:
    """Two fresh organisations and a way to mint Clerk-like tokens for their users."""

    key: rsa.RSAPrivateKey
    a: str
    b: str
    event_ids: list[int] = field(default_factory=list)

    def token(self, org: str | None, rol: str | None = "admin", **overrides: Any) -> str:
        claims: dict[str, Any] = {
            "role": "authenticated",
            "sub": f"user_{rol}_{org}",
            "exp": int(time.time()) + 600,
            "fva": [3, 3],
        }
        if org is not None:
            claims["o"] = {"id": org, "rol": rol}
        claims.update(overrides)
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})


_SEED = """
insert into org_events (org_id, topic, event) values
  ($1, 'jobs', 'one'), ($1, 'jobs', 'two'), ($1, 'mail', 'three'), ($2, 'jobs', 'other');
insert into tasks (organization_id, title, status) values
  ($1, 'alpha', 'open'), ($1, 'beta', 'done'), ($1, 'gamma', 'in_progress'), ($2, 'b-task', 'open');
insert into org_billing (organization_id, plan) values ($1, 'free');
"""


@pytest.fixture
async def orgs(database_url: str, rsa_key: rsa.RSAPrivateKey) -> Orgs:
    tag = uuid.uuid4().hex[:10]
    made = Orgs(rsa_key, f"org_a{tag}", f"org_b{tag}")
    conn = await asyncpg.connect(database_url)
    try:
        for statement in filter(str.strip, _SEED.split(";")):
            await conn.execute(statement.replace("$1", f"'{made.a}'").replace("$2", f"'{made.b}'"))
        rows = await conn.fetch("select id from org_events where org_id = $1 order by id", made.a)
        made.event_ids = [row["id"] for row in rows]
    finally:
        await conn.close()
    return made


Connect = Callable[..., AsyncPostgrestClient]


@pytest.fixture(params=list(KEY_KINDS))
def project_key(request: pytest.FixtureRequest) -> str:
    """The API key the official clients are built with: each kind in turn."""
    return KEY_KINDS[str(request.param)]


@pytest.fixture
async def connect(base_url: str, project_key: str) -> AsyncIterator[Connect]:
    """Official postgrest-py clients, closed after the test."""
    clients: list[AsyncPostgrestClient] = []

    def make(token: str | None = None, apikey: str = project_key) -> AsyncPostgrestClient:
        headers = {"apikey": apikey}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = AsyncPostgrestClient(f"{base_url}/rest/v1", headers=headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client, for what the official client hides (statuses, headers)."""
    async with httpx.AsyncClient(base_url=f"{base_url}/rest/v1") as client:
        yield client


def args(**named: Any) -> dict[str, Any]:
    """RPC arguments (postgrest-py annotates them as str values; any JSON is sent)."""
    return named


def _data(response: Any) -> Any:
    """A response's JSON (postgrest-py types it as a JSON union; tests index into it)."""
    return response.data


async def _error(awaitable: Any) -> APIError:
    with pytest.raises(APIError) as caught:
        await awaitable
    return caught.value


# RPCs --------------------------------------------------------------------------------


async def test_rpc_org_events_after_returns_own_org_events_in_id_order(
    orgs: Orgs, connect: Connect
) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    result = await client.rpc("org_events_after", args(after_id=orgs.event_ids[0] - 1)).execute()
    assert [row["id"] for row in _data(result)] == orgs.event_ids
    assert {row["org_id"] for row in _data(result)} == {orgs.a}


async def test_rpc_array_argument_filters_by_topic(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    call = args(after_id=orgs.event_ids[0] - 1, max_rows=10, topics=["mail"])
    result = await client.rpc("org_events_after", call).execute()
    assert [row["event"] for row in _data(result)] == ["three"]


async def test_rpc_org_events_head_returns_a_scalar(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    result = await client.rpc("org_events_head", args()).execute()
    assert _data(result) == orgs.event_ids[-1]


async def test_rpc_get_worker_checkpoint_is_zero_before_any_save(
    orgs: Orgs, connect: Connect
) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    result = await client.rpc("get_worker_checkpoint", args(consumer="mailer")).execute()
    assert _data(result) == 0


async def test_rpc_save_worker_checkpoint_never_moves_back(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    await client.rpc("save_worker_checkpoint", args(consumer="c", last_event_id=9)).execute()
    back = await client.rpc("save_worker_checkpoint", args(consumer="c", last_event_id=4)).execute()
    read = await client.rpc("get_worker_checkpoint", args(consumer="c")).execute()
    assert (_data(back), _data(read)) == (9, 9)


async def test_rpc_over_get_takes_arguments_from_the_query_string(
    orgs: Orgs, connect: Connect
) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    call = args(after_id=orgs.event_ids[1], topics=["jobs", "mail"])
    result = await client.rpc("org_events_after", call, get=True).execute()
    assert [row["id"] for row in _data(result)] == [orgs.event_ids[2]]


async def test_rpc_result_can_be_filtered_and_limited(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    result = (
        await client.rpc("org_events_after", args(after_id=0))
        .eq("topic", "jobs")
        .order("id", desc=True)
        .limit(1)
        .execute()
    )
    assert [row["event"] for row in _data(result)] == ["two"]


async def test_rpc_volatile_function_over_get_is_405(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    call = args(consumer="c", last_event_id=1)
    error = await _error(client.rpc("save_worker_checkpoint", call, get=True).execute())
    assert error.code == "25006"


async def test_unknown_function_is_pgrst202(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a))
    error = await _error(client.rpc("no_such_fn", args(x=1, a=2)).execute())
    assert error.code == "PGRST202"
    assert (
        error.message == "Could not find the function public.no_such_fn(a, x) in the schema cache"
    )


async def test_unknown_argument_name_is_pgrst202(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a))
    error = await _error(client.rpc("get_worker_checkpoint", args(consumr="x")).execute())
    assert error.code == "PGRST202"


async def test_function_raising_42501_is_403(orgs: Orgs, http: httpx.AsyncClient) -> None:
    token = orgs.token(None, None)  # no organisation: save_worker_checkpoint refuses
    response = await http.post(
        "/rpc/save_worker_checkpoint",
        json={"consumer": "c", "last_event_id": 1},
        headers={"apikey": ANON, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "42501"


async def test_function_raising_other_sqlstate_is_400_with_that_code(
    orgs: Orgs, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/rpc/save_worker_checkpoint",
        json={"consumer": "c", "last_event_id": -1},
        headers={"apikey": ANON, "Authorization": f"Bearer {orgs.token(orgs.a, 'worker')}"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "22023",
        "details": None,
        "hint": None,
        "message": "last_event_id must be a non-negative integer",
    }


# Reads -------------------------------------------------------------------------------


async def test_select_returns_only_the_callers_org_rows(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.b, "member"))
    result = (
        await client.table("tasks").select("*").in_("organization_id", [orgs.a, orgs.b]).execute()
    )
    assert [row["title"] for row in _data(result)] == ["b-task"]


async def test_other_org_filtering_for_org_a_rows_sees_none(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.b, "admin"))
    result = await client.table("org_events").select("*").eq("org_id", orgs.a).execute()
    assert _data(result) == []


@pytest.mark.parametrize(
    ("operator", "value", "titles"),
    [
        ("eq", "beta", ["beta"]),
        ("neq", "beta", ["alpha", "gamma"]),
        ("gt", "beta", ["gamma"]),
        ("gte", "beta", ["beta", "gamma"]),
        ("lt", "beta", ["alpha"]),
        ("lte", "beta", ["alpha", "beta"]),
        ("like", "*mm*", ["gamma"]),
        ("ilike", "AL*", ["alpha"]),
    ],
)
async def test_comparison_filter_selects_matching_rows(
    orgs: Orgs, connect: Connect, operator: str, value: str, titles: list[str]
) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    query = client.table("tasks").select("title").filter("title", operator, value).order("title")
    assert [row["title"] for row in _data(await query.execute())] == titles


async def test_in_filter_matches_any_listed_value(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    ids = orgs.event_ids
    result = await client.table("org_events").select("id").in_("id", [ids[0], ids[2]]).execute()
    assert sorted(row["id"] for row in _data(result)) == [ids[0], ids[2]]


async def test_not_and_is_filters_combine(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    result = await client.table("tasks").select("title").not_.is_("created_by", "null").execute()
    assert _data(result) == []  # seeded as the superuser: created_by is null


async def test_order_desc_limit_and_offset_page_rows(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    result = (
        await client.table("org_events").select("id").order("id", desc=True).range(1, 2).execute()
    )
    assert [row["id"] for row in _data(result)] == orgs.event_ids[1::-1]


async def test_select_list_returns_only_named_columns_with_aliases(
    orgs: Orgs, connect: Connect
) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    result = (
        await client.table("tasks").select("name:title", "status").eq("title", "beta").execute()
    )
    assert _data(result) == [{"name": "beta", "status": "done"}]


async def test_count_exact_reports_total_in_content_range(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    result = await client.table("tasks").select("*", count=CountMethod.exact).limit(1).execute()
    assert (len(_data(result)), result.count) == (1, 3)


async def test_single_returns_one_object(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    result = await client.table("tasks").select("title").eq("title", "alpha").single().execute()
    assert _data(result) == {"title": "alpha"}


async def test_single_without_exactly_one_row_is_406_pgrst116(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    error = await _error(client.table("tasks").select("*").single().execute())
    assert (error.code, error.details) == ("PGRST116", "The result contains 3 rows")


async def test_response_headers_are_postgrests(orgs: Orgs, http: httpx.AsyncClient) -> None:
    headers = {"apikey": ANON, "Authorization": f"Bearer {orgs.token(orgs.a, 'member')}"}
    response = await http.get("/tasks", params={"select": "id", "offset": "1"}, headers=headers)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Content-Range"] == "1-2/*"


# Writes ------------------------------------------------------------------------------


async def test_admin_insert_returns_the_new_row(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "admin"))
    result = (
        await client.table("tasks").insert({"organization_id": orgs.a, "title": "new"}).execute()
    )
    [row] = _data(result)
    assert (row["title"], row["status"], row["created_by"]) == (
        "new",
        "open",
        f"user_admin_{orgs.a}",
    )


async def test_bulk_insert_inserts_every_row(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    rows = [
        {"org_id": orgs.a, "topic": "jobs", "event": f"e{i}", "payload": {"i": i}} for i in range(3)
    ]
    result = await client.table("org_events").insert(rows).execute()
    assert [row["payload"] for row in _data(result)] == [{"i": 0}, {"i": 1}, {"i": 2}]


async def test_member_cannot_insert_tasks(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member"))
    error = await _error(
        client.table("tasks").insert({"organization_id": orgs.a, "title": "x"}).execute()
    )
    assert error.code == "42501"
    assert error.message == 'new row violates row-level security policy for table "tasks"'


async def test_rls_denial_on_insert_is_403(orgs: Orgs, http: httpx.AsyncClient) -> None:
    headers = {"apikey": ANON, "Authorization": f"Bearer {orgs.token(orgs.b, 'admin')}"}
    response = await http.post(
        "/tasks", json={"organization_id": orgs.a, "title": "x"}, headers=headers
    )
    assert (response.status_code, response.json()["code"]) == (403, "42501")


async def test_upsert_merges_on_conflict_column(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "admin"))
    row = {"organization_id": orgs.a, "plan": "pro"}
    result = await client.table("org_billing").upsert(row, on_conflict="organization_id").execute()
    assert [(r["organization_id"], r["plan"]) for r in _data(result)] == [(orgs.a, "pro")]


async def test_update_returns_changed_rows(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "worker"))
    result = await client.table("tasks").update({"status": "done"}).eq("title", "alpha").execute()
    assert [(row["title"], row["status"]) for row in _data(result)] == [("alpha", "done")]


async def test_update_of_other_org_rows_changes_nothing(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.b, "admin"))
    result = (
        await client.table("tasks")
        .update({"title": "hijack"})
        .eq("organization_id", orgs.a)
        .execute()
    )
    assert _data(result) == []


async def test_singular_update_of_many_rows_is_406_and_rolled_back(
    orgs: Orgs, http: httpx.AsyncClient
) -> None:
    headers = {
        "apikey": ANON,
        "Authorization": f"Bearer {orgs.token(orgs.a, 'admin')}",
        "Accept": "application/vnd.pgrst.object+json",
        "Prefer": "return=representation",
    }
    response = await http.patch(
        "/tasks", params={"status": "neq.x"}, json={"title": "same"}, headers=headers
    )
    titles = await http.get(
        "/tasks", params={"select": "title", "order": "title"}, headers={**headers, "Accept": "*/*"}
    )
    assert (response.status_code, response.json()["code"]) == (406, "PGRST116")
    assert [row["title"] for row in titles.json()] == ["alpha", "beta", "gamma"]


async def test_unsupported_method_on_a_table_is_405(orgs: Orgs, http: httpx.AsyncClient) -> None:
    response = await http.put("/tasks", json={}, headers={"apikey": ANON})
    assert (response.status_code, response.json()["code"]) == (405, "PGRST117")


async def test_delete_returns_deleted_rows(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "admin"))
    result = await client.table("tasks").delete().eq("title", "beta").execute()
    remaining = await client.table("tasks").select("title").order("title").execute()
    assert [row["title"] for row in _data(result)] == ["beta"]
    assert [row["title"] for row in _data(remaining)] == ["alpha", "gamma"]


async def test_delete_without_filter_is_refused(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "admin"))
    error = await _error(client.table("tasks").delete().execute())
    assert (error.code, error.message) == ("21000", "DELETE requires a WHERE clause")


async def test_insert_of_unknown_column_is_pgrst204(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "admin"))
    error = await _error(
        client.table("tasks").insert({"organization_id": orgs.a, "nope": 1}).execute()
    )
    assert error.code == "PGRST204"


# Authentication and errors -------------------------------------------------------------


async def test_bad_signature_is_401_pgrst301(orgs: Orgs, http: httpx.AsyncClient) -> None:
    head, body, _ = orgs.token(orgs.a).split(".")
    forged = f"{head}.{body}.{'A' * 342}"
    response = await http.get(
        "/tasks", headers={"apikey": ANON, "Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"


async def test_expired_token_is_401_pgrst303(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, exp=int(time.time()) - 120))
    error = await _error(client.table("tasks").select("*").execute())
    assert (error.code, error.message) == ("PGRST303", "JWT expired")


async def test_token_expired_within_clock_skew_is_accepted(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "member", exp=int(time.time()) - 5))
    result = await client.table("tasks").select("id").execute()
    assert len(_data(result)) == 3


async def test_missing_apikey_is_refused_by_the_gateway(http: httpx.AsyncClient) -> None:
    response = await http.get("/tasks")
    assert response.status_code == 401
    assert response.json()["message"] == "No API key found in request"


async def test_user_token_as_apikey_is_an_invalid_api_key(
    orgs: Orgs, http: httpx.AsyncClient
) -> None:
    response = await http.get("/tasks", headers={"apikey": orgs.token(orgs.a)})
    assert (response.status_code, response.json()["message"]) == (401, "Invalid API key")


async def test_anon_is_refused_tables_with_401(http: httpx.AsyncClient) -> None:
    response = await http.get("/tasks", headers={"apikey": ANON})
    assert response.status_code == 401
    assert response.json()["message"] == "permission denied for table tasks"


async def test_anon_cannot_call_worker_rpcs(connect: Connect) -> None:
    error = await _error(connect().rpc("org_events_head", args()).execute())
    assert error.code == "42501"


async def test_unknown_table_is_404_pgrst205(orgs: Orgs, http: httpx.AsyncClient) -> None:
    headers = {"apikey": ANON, "Authorization": f"Bearer {orgs.token(orgs.a)}"}
    response = await http.get("/taskz", headers=headers)
    assert response.status_code == 404
    assert response.json() == {
        "code": "PGRST205",
        "details": None,
        "hint": "Perhaps you meant the table 'public.tasks'",
        "message": "Could not find the table 'public.taskz' in the schema cache",
    }


async def test_unknown_column_in_filter_is_400_42703(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a))
    error = await _error(client.table("tasks").select("*").eq("nope", 1).execute())
    assert (error.code, error.message) == ("42703", "column tasks.nope does not exist")


async def test_unknown_operator_is_400_pgrst100(orgs: Orgs, http: httpx.AsyncClient) -> None:
    headers = {"apikey": ANON, "Authorization": f"Bearer {orgs.token(orgs.a)}"}
    response = await http.get("/tasks", params={"id": "foo.1"}, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "PGRST100")


async def test_value_of_the_wrong_type_is_400_22p02(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a))
    error = await _error(client.table("tasks").select("*").eq("id", "abc").execute())
    assert error.code == "22P02"


async def test_filter_values_cannot_inject_sql(orgs: Orgs, connect: Connect) -> None:
    client = connect(orgs.token(orgs.a, "admin"))
    hostile = "x' or '1'='1"
    result = await client.table("tasks").select("*").eq("title", hostile).execute()
    everything = await client.table("tasks").select("id").execute()
    assert (_data(result), len(_data(everything))) == ([], 3)


async def test_root_lists_tables_and_functions(orgs: Orgs, http: httpx.AsyncClient) -> None:
    response = await http.get("/", headers={"apikey": ANON})
    paths = response.json()["paths"]
    assert {"/tasks", "/org_events", "/rpc/org_events_after"} <= set(paths)


async def test_supabase_client_reads_tables_and_calls_rpcs(
    orgs: Orgs, base_url: str, project_key: str
) -> None:
    token = orgs.token(orgs.a, "worker")
    async with httpx.AsyncClient() as session:
        # Our own httpx client: supabase-py's default path trips postgrest-py's deprecation.
        options = AsyncClientOptions(
            headers={"Authorization": f"Bearer {token}"}, httpx_client=session
        )
        client = await acreate_client(base_url, project_key, options=options)
        tasks = await client.table("tasks").select("title").order("title").execute()
        head = await client.rpc("org_events_head", args()).execute()
    assert [row["title"] for row in _data(tasks)] == ["alpha", "beta", "gamma"]
    assert _data(head) == orgs.event_ids[-1]


@pytest.fixture(scope="module")
async def timeout_probe(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "create or replace function public.devstack_statement_timeout() returns text "
            "language sql stable as $$ select current_setting('statement_timeout') $$"
        )
    finally:
        await conn.close()


@pytest.mark.usefixtures("timeout_probe")
@pytest.mark.parametrize(("rol", "expected"), [(None, "3s"), ("member", "8s")])
async def test_requests_run_with_the_roles_statement_timeout(
    orgs: Orgs, connect: Connect, rol: str | None, expected: str
) -> None:
    client = connect(None if rol is None else orgs.token(orgs.a, rol))
    result = await client.rpc("devstack_statement_timeout", args()).execute()
    assert _data(result) == expected


async def test_service_role_has_the_authenticators_statement_timeout(
    base_url: str, timeout_probe: None
) -> None:
    async with httpx.AsyncClient(base_url=f"{base_url}/rest/v1") as http:
        response = await http.post(
            "/rpc/devstack_statement_timeout", json={}, headers={"apikey": KEYS.secret}
        )
    assert response.json() == "8s"
