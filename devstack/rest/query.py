"""PostgREST's query-string grammar, parsed into plain values (no SQL is written here).

Covered: ``select=`` (``*``, columns, ``alias:column``), horizontal filters
``col=[not.]op.value`` with ``eq neq gt gte lt lte like ilike in is``, ``order=``,
``limit=``, ``offset=``. Column names stay data; :mod:`devstack.rest.sql` checks them
against the catalog before quoting them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from devstack.rest.errors import ApiError, not_implemented, parse_error

COMPARISONS = ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike")
OPERATORS = (*COMPARISONS, "in", "is")
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
# Parameters that are never filters: PostgREST's own, plus the gateway's apikey.
RESERVED = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns", "apikey"})
LOGIC = frozenset({"or", "and", "not.or", "not.and"})
_NOT_READ = RESERVED - {"select", "order", "limit", "offset"}


@dataclass(frozen=True)
class Filter:
    column: str
    operator: str  # one of OPERATORS
    value: str | tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Order:
    column: str
    descending: bool = False
    nulls: str | None = None  # "first" | "last" | None (Postgres' default)


@dataclass(frozen=True)
class Field:
    column: str
    alias: str | None = None


@dataclass(frozen=True)
class ReadQuery:
    fields: tuple[Field, ...] | None  # None: every column
    filters: tuple[Filter, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0


def _unquote(name: str) -> str:
    """A column as postgrest-py sends it: bare, or double-quoted with backslash escapes."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return _unescape(name[1:-1])
    return name


def _unescape(text: str) -> str:
    out, escaped = [], False
    for char in text:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _filter_error(key: str, raw: str, char: str) -> ApiError:
    return parse_error(
        f'"failed to parse filter ({raw})" (line 1, column 1)',
        f'unexpected "{char}" expecting "not" or operator ({", ".join(OPERATORS)})',
    )


def parse_filter(key: str, raw: str) -> Filter:
    """``key=raw`` as a horizontal filter, e.g. ``id=not.in.(1,2)``."""
    negated = raw.startswith("not.")
    rest = raw[4:] if negated else raw
    operator, dot, value = rest.partition(".")
    if not dot or operator not in OPERATORS:
        raise _filter_error(key, raw, rest[:1] or " ")
    column = _unquote(key)
    if operator == "in":
        return Filter(column, operator, parse_list(raw, value), negated)
    if operator == "is" and value not in IS_VALUES:
        raise parse_error(
            f'"failed to parse filter ({raw})" (line 1, column {len(raw) - len(value) + 1})',
            'unexpected "' + value[:1] + '" expecting null or trilean value (unknown, true, false)',
        )
    return Filter(column, operator, value, negated)


def parse_list(raw: str, text: str) -> tuple[str, ...]:
    """``(a,"b,c",d)`` -> ("a", "b,c", "d"); quotes protect commas and parentheses."""
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise parse_error(f'"failed to parse filter ({raw})" (line 1, column 1)', "expecting (")
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text[1:-1]:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise parse_error(f'"failed to parse filter ({raw})" (line 1, column 1)', "unclosed quote")
    if text != "()":
        items.append("".join(current))
    return tuple(items)


def parse_order(text: str) -> tuple[Order, ...]:
    """``order=a.desc.nullslast,b`` -> (Order("a", True, "last"), Order("b"))."""
    orders = []
    for term in text.split(","):
        column, *modifiers = term.split(".")
        descending, nulls = False, None
        for modifier in modifiers:
            if modifier in ("asc", "desc"):
                descending = modifier == "desc"
            elif modifier in ("nullsfirst", "nullslast"):
                nulls = modifier[5:]
            else:
                raise parse_error(
                    f'"failed to parse order ({text})" (line 1, column {len(column) + 2})',
                    f'unexpected "{modifier[:1]}" expecting "asc", "desc", "nullsfirst" or '
                    '"nullslast"',
                )
        if not column:
            raise parse_error(f'"failed to parse order ({text})" (line 1, column 1)')
        orders.append(Order(_unquote(column), descending, nulls))
    return tuple(orders)


def parse_select(text: str) -> tuple[Field, ...] | None:
    """``select=*`` -> None; ``select=id,name:title`` -> fields. No embedding, no casts."""
    cleaned = "".join(text.split())
    if cleaned in ("", "*"):
        return None
    fields = []
    for item in cleaned.split(","):
        if any(c in item for c in "()!") or "::" in item or "->" in item:
            raise not_implemented(f"select item {item!r}: embedding, casts and JSON paths")
        alias, colon, column = item.rpartition(":")
        if not column or (colon and not alias):
            raise parse_error(f'"failed to parse select parameter ({text})" (line 1, column 1)')
        fields.append(Field(_unquote(column), _unquote(alias) if colon else None))
    return tuple(fields)


def parse_count(name: str, text: str) -> int:
    """A non-negative integer ``limit`` or ``offset``."""
    if not text.isdigit():
        raise parse_error(
            f'"failed to parse {name} parameter ({text})" (line 1, column 1)',
            f'unexpected "{text[:1]}" expecting digit',
        )
    return int(text)


def parse_read(
    params: Iterable[tuple[str, str]], *, skip: frozenset[str] = frozenset()
) -> ReadQuery:
    """Select list, filters, order and paging from a query string's pairs."""
    fields: tuple[Field, ...] | None = None
    filters: list[Filter] = []
    order: tuple[Order, ...] = ()
    limit, offset = None, 0
    for key, value in params:
        if key in skip or key in _NOT_READ:
            continue
        if key == "select":
            fields = parse_select(value)
        elif key == "order":
            order = parse_order(value)
        elif key == "limit":
            limit = parse_count("limit", value)
        elif key == "offset":
            offset = parse_count("offset", value)
        elif key in LOGIC or ("." in key and not key.startswith('"')):
            raise not_implemented(f"{key!r}: logical and embedded-resource filters")
        else:
            filters.append(parse_filter(key, value))
    return ReadQuery(fields, tuple(filters), order, limit, offset)
