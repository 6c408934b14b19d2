"""``/rpc/{function}``: choose the overload by argument names, then call it with named args.

Arguments travel as one JSON object that ``json_to_record`` types with the parameters'
catalog types (so ``[1, 2]`` becomes a ``bigint[]`` and ``"5"`` a ``bigint``), the way
PostgREST does it; the call uses named notation, so omitted arguments take their defaults.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devstack.rest.catalog import Catalog, Routine
from devstack.rest.errors import ApiError
from devstack.rest.sql import Params, Relation, ident

SCALAR_ELEMENT = "_r.pgrst_scalar"


def not_found(schema: str, name: str, keys: list[str]) -> ApiError:
    """PGRST202, worded as PostgREST words it."""
    func = f"{schema}.{name}"
    if keys:
        noun = "parameters" if len(keys) > 1 else "parameter"
        wanted = f"({', '.join(keys)})"
        searched = f" with {noun} {', '.join(keys)}"
    else:
        wanted = searched = " without parameters"
    return ApiError(
        404,
        "PGRST202",
        f"Could not find the function {func}{wanted} in the schema cache",
        details=f"Searched for the function {func}{searched} or with a single unnamed "
        "json/jsonb parameter, but no matches were found in the schema cache.",
    )


def resolve(catalog: Catalog, name: str, keys: set[str]) -> Routine | None:
    """The overload whose parameter names fit ``keys`` (None when none does)."""
    return next((r for r in catalog.routines.get(name, ()) if r.accepts(keys)), None)


def argument_names(catalog: Catalog, name: str) -> set[str]:
    """Every parameter name of every overload: for GET, which query keys are arguments."""
    return {p.name for r in catalog.routines.get(name, ()) for p in r.params}


@dataclass(frozen=True)
class Call:
    """A routine call: ``expr`` evaluated over ``from_clause`` (empty without arguments)."""

    routine: Routine
    expr: str
    from_clause: str

    def scalar_sql(self) -> str:
        """One JSON value (a composite result becomes an object)."""
        return f"select to_json({self.expr})::text{self.from_clause}"

    def void_sql(self) -> str:
        return f"select {self.expr}{self.from_clause}"

    def set_relation(self) -> Relation:
        """The rows of a set-returning call, to filter and page like a table."""
        joined = f"{self.from_clause} cross join lateral" if self.from_clause else " from"
        if self.is_scalar_set:
            # PostgREST's convention: a set of scalars is aggregated from "pgrst_scalar".
            source = f"(select _f as pgrst_scalar {joined} {self.expr} _f) pgrst_call"
            return Relation(self.routine.name, source, {"pgrst_scalar": "text"})
        source = f"(select _f.* {joined} {self.expr} _f) pgrst_call"
        return Relation(self.routine.name, source, self.routine.out_columns)

    @property
    def is_scalar_set(self) -> bool:
        return self.routine.returns_set and not self.routine.out_columns


def build_call(
    routine: Routine, args: Mapping[str, Any], params: Params, table_columns: Mapping[str, str]
) -> Call:
    """Named-notation call of ``routine`` with ``args`` (keys already checked)."""
    types = {p.name: p.type for p in routine.params}
    keys = sorted(args)
    named = ", ".join(f"{ident(k)} => _a.{ident(k)}" for k in keys)
    expr = f"{ident(routine.schema)}.{ident(routine.name)}({named})"
    from_clause = ""
    if keys:
        defs = ", ".join(f"{ident(k)} {types[k]}" for k in keys)
        from_clause = f" from json_to_record({params.json(json.dumps(dict(args)))}) as _a({defs})"
    if routine.returns_table is not None:
        routine = dataclasses.replace(routine, out_columns=dict(table_columns))
    return Call(routine, expr, from_clause)
