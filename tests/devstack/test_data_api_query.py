"""The data API's query parser and SQL builder: request text never becomes SQL text.

Properties over arbitrary input (hypothesis): the SQL for a filter is the same whatever
the value (values travel only as parameters), unknown column names are refused before
any SQL exists, quoted identifiers cannot be broken out of, and ``in`` lists encoded by
the official client's own quoting parse back to the same values.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from postgrest.utils import sanitize_param

from devstack.rest.errors import ApiError
from devstack.rest.query import COMPARISONS, parse_filter, parse_list, parse_read
from devstack.rest.sql import Params, Relation, ident, read_sql

TASKS = Relation("tasks", '"public"."tasks"', {"id": "bigint", "title": "text"})
values = st.text(min_size=1)
names = st.text(min_size=1).filter(lambda s: "\x00" not in s)


def _sql_for(key: str, raw: str) -> tuple[str, list[object]]:
    params = Params()
    query = parse_read([(key, raw)])
    return read_sql(TASKS, query, params, max_rows=1000, count=False), params.values


@given(operator=st.sampled_from(COMPARISONS), value=values, negate=st.booleans())
def test_filter_sql_does_not_depend_on_the_value(operator: str, value: str, negate: bool) -> None:
    prefix = "not." if negate else ""
    sql, params = _sql_for("title", f"{prefix}{operator}.{value}")
    reference, _ = _sql_for("title", f"{prefix}{operator}.x")
    assert sql == reference
    assert params[0] in (value, value.replace("*", "%"))


@given(items=st.lists(st.text(), min_size=1).filter(lambda xs: xs != [""]))
def test_in_list_quoted_by_the_official_client_parses_back(items: list[str]) -> None:
    encoded = f"({','.join(sanitize_param(item) for item in items)})"
    assert parse_list(f"in.{encoded}", encoded) == tuple(items)


@given(items=st.lists(values, min_size=1))
def test_in_filter_sql_does_not_depend_on_the_values(items: list[str]) -> None:
    encoded = f"in.({','.join(sanitize_param(item) for item in items)})"
    sql, params = _sql_for("id", encoded)
    assert sql == _sql_for("id", "in.(1)")[0]
    assert params[0] == items


@given(column=names)
def test_unknown_columns_are_refused_before_any_sql(column: str) -> None:
    if column in TASKS.columns:
        return
    with pytest.raises(ApiError) as caught:
        _sql_for(column, "eq.1")
    assert caught.value.code in ("42703", "PGRST100", "PGRST127")


@given(column=names)
def test_order_by_unknown_columns_is_refused(column: str) -> None:
    if column in TASKS.columns or "," in column or "." in column:
        return
    with pytest.raises(ApiError) as caught:
        read_sql(TASKS, parse_read([("order", column)]), Params(), max_rows=10, count=False)
    assert caught.value.code == "42703"


@given(name=names)
def test_identifiers_cannot_escape_their_quotes(name: str) -> None:
    quoted = ident(name)
    inner = quoted[1:-1]
    assert quoted[0] == quoted[-1] == '"'
    assert inner.replace('""', "").count('"') == 0
    assert inner.replace('""', '"') == name


def test_identifiers_refuse_nul() -> None:
    with pytest.raises(ApiError):
        ident("a\x00b")


def test_unknown_operator_is_a_pgrst100_parse_error() -> None:
    with pytest.raises(ApiError) as caught:
        parse_filter("id", "foo.1")
    assert (caught.value.status, caught.value.code) == (400, "PGRST100")


def test_is_accepts_only_null_and_trilean_values() -> None:
    with pytest.raises(ApiError) as caught:
        parse_filter("id", "is.1; drop table tasks")
    assert caught.value.code == "PGRST100"


def test_limit_must_be_a_non_negative_integer() -> None:
    with pytest.raises(ApiError) as caught:
        parse_read([("limit", "1; select 1")])
    assert caught.value.code == "PGRST100"


def test_limit_is_capped_by_max_rows() -> None:
    params = Params()
    read_sql(TASKS, parse_read([("limit", "5000")]), params, max_rows=1000, count=False)
    assert params.values == [1000, 0]
