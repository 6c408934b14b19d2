"""The metric names a PromQL expression reads, without a PromQL parser.

promtool proves the expressions parse; this only needs to find the names. It removes
what can hold identifiers that are not metrics (strings, label matchers, ranges, the
label lists of by/without/on/ignoring/group_*), then every remaining identifier that is
neither a function call, a keyword nor a number is a metric name.
"""

from __future__ import annotations

import re

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# Numbers and durations (0.95, 1e3, 5m, 1h30m, 0x1F): a token that starts with a digit.
_NUMBERS = re.compile(r"(?<![\w:])\d[\w.]*")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
     "group_left", "group_right", "inf", "nan"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Every metric name ``expr`` selects."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGES.sub("[]", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
