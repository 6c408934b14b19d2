"""Parameterised SQL from parsed requests: the only place that writes SQL text.

Rules that make injection impossible, whatever the request holds:

* identifiers are either keys of the catalog snapshot (checked by :meth:`Relation.column`)
  or aliases chosen by the caller, and every one is written by :func:`ident` (double
  quotes, embedded quotes doubled, NUL refused);
* type names are ``format_type()`` output read from the catalog, never request text;
* operators, directions and ``IS`` operands come from fixed tables;
* every value is a ``$n`` parameter sent as text or JSON and cast by Postgres.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from devstack.rest.catalog import Table
from devstack.rest.errors import parse_error, undefined_column
from devstack.rest.query import Field, Filter, Order, ReadQuery

COMPARE_SQL = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
IS_SQL = {"null": "null", "not_null": "not null", "true": "true", "false": "false"}
IS_SQL["unknown"] = "unknown"


def ident(name: str) -> str:
    """A quoted SQL identifier; any text is safe inside the quotes except NUL."""
    if "\x00" in name:
        raise parse_error("identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


class Params:
    """Collects ``$n`` parameters; each placeholder carries an explicit type cast."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def _add(self, value: object, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"

    def text(self, value: str) -> str:
        return self._add(value, "text")

    def texts(self, values: Sequence[str]) -> str:
        return self._add(list(values), "text[]")

    def json(self, value: str) -> str:
        return self._add(value, "json")

    def bigint(self, value: int) -> str:
        return self._add(value, "bigint")


@dataclass(frozen=True)
class Relation:
    """Something to select from: its label in errors, its FROM text and its columns."""

    label: str
    source: str  # built only in this package, from catalog names
    columns: Mapping[str, str]

    def column(self, name: str) -> str:
        """The quoted column, or 42703 when the relation has no such column."""
        if name not in self.columns:
            raise undefined_column(self.label, name)
        return ident(name)


def table_relation(table: Table) -> Relation:
    return Relation(table.name, f"{ident(table.schema)}.{ident(table.name)}", table.columns)


def condition(rel: Relation, flt: Filter, params: Params) -> str:
    """One filter as a boolean SQL expression."""
    col, type_ = rel.column(flt.column), rel.columns[flt.column]
    if flt.operator == "is":
        sql = f"{col} is {IS_SQL[str(flt.value)]}"
    elif flt.operator == "in":
        values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
        sql = f"{col} = any(cast({params.texts(values)} as {type_}[]))"
    elif flt.operator in ("like", "ilike"):
        pattern = str(flt.value).replace("*", "%")  # PostgREST's URL-safe wildcard
        sql = f"{col}::text {flt.operator} {params.text(pattern)}"
    else:
        sql = f"{col} {COMPARE_SQL[flt.operator]} cast({params.text(str(flt.value))} as {type_})"
    return f"not ({sql})" if flt.negated else sql


def where_clause(rel: Relation, filters: Iterable[Filter], params: Params) -> str:
    terms = [condition(rel, f, params) for f in filters]
    return f" where {' and '.join(terms)}" if terms else ""


def select_list(rel: Relation, fields: Sequence[Field] | None) -> str:
    if fields is None:
        return ", ".join(ident(c) for c in rel.columns)
    return ", ".join(
        rel.column(f.column) + (f" as {ident(f.alias)}" if f.alias else "") for f in fields
    )


def order_clause(rel: Relation, orders: Sequence[Order]) -> str:
    terms = [
        rel.column(o.column)
        + (" desc" if o.descending else " asc")
        + (f" nulls {'first' if o.nulls == 'first' else 'last'}" if o.nulls else "")
        for o in orders
    ]
    return f" order by {', '.join(terms)}" if terms else ""


def wrap_json(inner: str, *, prefix: str = "", element: str = "_r", total: str = "null") -> str:
    """Rows of ``inner`` as one JSON array (built by Postgres, as PostgREST does)."""
    return (
        f"{prefix}select coalesce(json_agg({element}), '[]')::text as body, "
        f"count(*) as n, (json_agg({element}) -> 0)::text as first, {total} as total "
        f"from ({inner}) _r"
    )


def read_sql(
    rel: Relation, q: ReadQuery, params: Params, *, max_rows: int, count: bool, element: str = "_r"
) -> str:
    """A GET: selected columns, filters, order, limit capped at ``max_rows``, offset."""
    limit = max_rows if q.limit is None else min(q.limit, max_rows)
    inner = (
        f"select {select_list(rel, q.fields)} from {rel.source}"
        f"{where_clause(rel, q.filters, params)}{order_clause(rel, q.order)}"
        f" limit {params.bigint(limit)} offset {params.bigint(q.offset)}"
    )
    total = "null"
    if count:
        total = f"(select count(*) from {rel.source}{where_clause(rel, q.filters, params)})"
    return wrap_json(inner, element=element, total=total)


def _returning(rel: Relation, fields: Sequence[Field] | None) -> str:
    return f" returning {select_list(rel, fields) or 'null'}"


def with_returning(mutation: str, rel: Relation, fields: Sequence[Field] | None) -> str:
    """A mutation whose returned rows come back as a JSON array."""
    prefix = f"with pgrst_source as ({mutation}{_returning(rel, fields)}) "
    return wrap_json("select * from pgrst_source", prefix=prefix)


def insert_sql(
    rel: Relation,
    columns: Sequence[str],
    body: str,
    *,
    conflict: Sequence[str] | None = None,
    merge: bool = True,
) -> str:
    """INSERT of the JSON array ``body``: missing keys become NULL (PostgREST's default)."""
    cols = ", ".join(rel.column(c) for c in columns)
    target = f" ({cols})" if cols else ""
    sql = (
        f"insert into {rel.source}{target} select {cols} "
        f"from json_populate_recordset(null::{rel.source}, {body})"
    )
    if conflict is None:
        return sql
    keys = ", ".join(rel.column(c) for c in conflict)
    sets = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in columns)
    action = f"do update set {sets}" if merge and sets else "do nothing"
    return f"{sql} on conflict ({keys}) {action}"


def update_sql(
    rel: Relation, columns: Sequence[str], body: str, filters: Sequence[Filter], params: Params
) -> str:
    """UPDATE the filtered rows with the JSON object ``body``'s values for ``columns``."""
    cols = ", ".join(rel.column(c) for c in columns)
    picked = ", ".join(f"_b.{ident(c)}" for c in columns)
    source = f"json_populate_record(null::{rel.source}, {body}) _b"
    return (
        f"update {rel.source} set ({cols}) = (select {picked} from {source})"
        f"{where_clause(rel, filters, params)}"
    )


def delete_sql(rel: Relation, filters: Sequence[Filter], params: Params) -> str:
    return f"delete from {rel.source}{where_clause(rel, filters, params)}"
