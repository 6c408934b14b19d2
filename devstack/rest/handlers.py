"""Routes under ``/rest/v1``: tables (GET/HEAD/POST/PATCH/DELETE), ``/rpc/{function}`` and
the root description. Each handler authenticates, plans SQL, runs it in the request's
transaction and shapes the response; every ApiError becomes PostgREST's JSON error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devstack.jwt import Keyring
from devstack.rest import negotiate as neg
from devstack.rest import rpc
from devstack.rest import sql as q
from devstack.rest.auth import Identity, authenticate
from devstack.rest.backend import Backend, RequestMeta
from devstack.rest.errors import ApiError, invalid_body
from devstack.rest.faults import DataApiFaults
from devstack.rest.query import ReadQuery, parse_read
from devstack.rest.writes import plan_write

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/rest/v1"


def guarded(handler: Handler) -> Handler:
    """Turn ApiErrors into their JSON responses (no app-wide middleware: the app is shared)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()

    return wrapper


class Routes:
    """The handlers, bound to one backend, keyring and row cap."""

    def __init__(
        self,
        backend: Backend,
        keyring: Keyring,
        max_rows: int,
        faults: DataApiFaults | None = None,
    ) -> None:
        self._backend = backend
        self._keyring = keyring
        self._max_rows = max_rows
        self._faults = faults

    def add_to(self, app: web.Application) -> None:
        r = app.router
        wrap = self._wrap
        r.add_get(f"{PREFIX}/", wrap(self.root))
        r.add_get(f"{PREFIX}/rpc/{{function}}", wrap(self.call_function))
        r.add_post(f"{PREFIX}/rpc/{{function}}", wrap(self.call_function))
        r.add_get(f"{PREFIX}/{{table}}", wrap(self.read))
        for method in ("POST", "PATCH", "DELETE"):
            r.add_route(method, f"{PREFIX}/{{table}}", wrap(self.write))
        r.add_route("*", f"{PREFIX}/{{tail:.*}}", wrap(self.unmatched))

    def _wrap(self, handler: Handler) -> Handler:
        """``guarded``, after the scripted fault of the request (if any) has played."""
        faults = self._faults
        if faults is None:
            return guarded(handler)

        @functools.wraps(handler)
        async def faulty(request: web.Request) -> web.StreamResponse:
            if not await faults.before(request, request.path.removeprefix(PREFIX)):
                return web.Response()  # the connection was dropped: nothing will be sent
            return await handler(request)

        return guarded(faulty)

    def _begin(self, request: web.Request, profile_header: str) -> Identity:
        identity = authenticate(request.headers, self._keyring)
        neg.check_profile(request.headers, profile_header, self._backend.schema)
        return identity

    @staticmethod
    def _meta(request: web.Request) -> RequestMeta:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return RequestMeta(request.method, request.path, headers)

    async def root(self, request: web.Request) -> web.StreamResponse:
        """A minimal OpenAPI 2.0 description: paths and column types."""
        self._begin(request, "Accept-Profile")
        cat = await self._backend.reload()
        paths: dict[str, Any] = {"/": {}}
        paths.update({f"/{name}": {} for name in sorted(cat.tables)})
        paths.update({f"/rpc/{name}": {} for name in sorted(cat.routines)})
        definitions = {
            t.name: {
                "type": "object",
                "properties": {c: {"format": ty} for c, ty in t.columns.items()},
            }
            for t in cat.tables.values()
        }
        doc = {
            "swagger": "2.0",
            "info": {"title": "devstack data API", "version": "stand-in"},
            "basePath": "/",
            "paths": paths,
            "definitions": definitions,
        }
        return neg.json_response(json.dumps(doc))

    async def read(self, request: web.Request) -> web.StreamResponse:
        """GET/HEAD a table: select, filters, order, limit/offset, optional exact count."""
        identity = self._begin(request, "Accept-Profile")
        single = neg.wants_object(request.headers.get("Accept"))
        table = await self._backend.table(request.match_info["table"])
        query = parse_read(request.query.items())
        prefs = neg.preferences(request.headers.getall("Prefer", []))
        params = q.Params()
        statement = q.read_sql(
            q.table_relation(table), query, params, max_rows=self._max_rows, count=prefs.count
        )
        rows = await self._backend.run(
            identity,
            self._meta(request),
            lambda conn: neg.fetch_rows(conn, statement, params.values, single=single),
            readonly=True,
        )
        return neg.rows_response(
            rows, status=200, single=single, offset=query.offset, counted=prefs.count
        )

    async def write(self, request: web.Request) -> web.StreamResponse:
        """POST (insert/upsert), PATCH (update) or DELETE a table's rows."""
        identity = self._begin(request, "Content-Profile")
        single = neg.wants_object(request.headers.get("Accept"))
        table = await self._backend.table(request.match_info["table"])
        prefs = neg.preferences(request.headers.getall("Prefer", []))
        body = await _json_body(request) if request.method != "DELETE" else None
        plan = plan_write(request.method, table, request.query, body, prefs)
        if plan is None:  # PATCH with nothing to set: PostgREST answers without a query
            empty = neg.Rows("[]" if prefs.representation else None, 0)
            status = 200 if prefs.representation else 204
            return neg.rows_response(empty, status=status, single=False)
        runner = neg.fetch_rows if prefs.representation else neg.execute_count
        rows = await self._backend.run(
            identity,
            self._meta(request),
            lambda conn: runner(conn, plan.sql, plan.values, single=single),
            readonly=False,
        )
        status = 201 if request.method == "POST" else (200 if prefs.representation else 204)
        return neg.rows_response(rows, status=status, single=single, counted=prefs.count)

    async def call_function(self, request: web.Request) -> web.StreamResponse:
        """Call a function: JSON-body args (POST) or query args (GET, read-only)."""
        readonly = request.method in ("GET", "HEAD")
        identity = self._begin(request, "Accept-Profile" if readonly else "Content-Profile")
        single = neg.wants_object(request.headers.get("Accept"))
        name = request.match_info["function"]
        cat = await self._backend.catalog_with(routine=name)
        if readonly:
            arg_names = rpc.argument_names(cat, name)
            args: dict[str, Any] = {k: v for k, v in request.query.items() if k in arg_names}
            query = parse_read(request.query.items(), skip=frozenset(arg_names))
        else:
            args = await _json_object(request)
            query = parse_read(request.query.items())
        routine = rpc.resolve(cat, name, set(args))
        if routine is None:
            raise rpc.not_found(self._backend.schema, name, sorted(args))
        params = q.Params()
        columns = (
            cat.tables[routine.returns_table].columns if routine.returns_table in cat.tables else {}
        )
        call = rpc.build_call(routine, args, params, columns)
        meta = self._meta(request)
        return await self._run_call(
            identity, meta, call, params, query, single=single, readonly=readonly
        )

    async def _run_call(
        self,
        identity: Identity,
        meta: RequestMeta,
        call: rpc.Call,
        params: q.Params,
        query: ReadQuery,
        *,
        single: bool,
        readonly: bool,
    ) -> web.StreamResponse:
        values = params.values  # the same list: read_sql below may still append to it
        if call.routine.returns_void:
            await self._backend.run(
                identity, meta, lambda c: c.execute(call.void_sql(), *values), readonly=readonly
            )
            return web.Response(status=204)
        if not call.routine.returns_set:
            value = await self._backend.run(
                identity, meta, lambda c: c.fetchval(call.scalar_sql(), *values), readonly=readonly
            )
            return neg.json_response(value if value is not None else "null")
        element = rpc.SCALAR_ELEMENT if call.is_scalar_set else "_r"
        statement = q.read_sql(
            call.set_relation(),
            query,
            params,
            max_rows=self._max_rows,
            count=False,
            element=element,
        )
        rows = await self._backend.run(
            identity,
            meta,
            lambda c: neg.fetch_rows(c, statement, values, single=single),
            readonly=readonly,
        )
        return neg.rows_response(rows, status=200, single=single, offset=query.offset)

    async def unmatched(self, request: web.Request) -> web.StreamResponse:
        """PGRST101/117 for a method RPC/tables do not support, PGRST125 for other paths."""
        tail = request.match_info["tail"].strip("/")
        if tail.startswith("rpc/") and tail.count("/") == 1:
            raise ApiError(405, "PGRST101", f"Cannot use the {request.method} method on RPC")
        if "/" not in tail:
            raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        raise ApiError(404, "PGRST125", "Invalid path specified in request URL")


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_body() from exc


async def _json_object(request: web.Request) -> dict[str, Any]:
    """An RPC's named arguments; an empty body means none."""
    raw = await request.read()
    if not raw.strip():
        return {}
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise invalid_body("the stand-in takes RPC arguments as one JSON object")
    return body
