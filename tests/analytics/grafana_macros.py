"""What the Grafana ClickHouse plugin does to a panel's SQL before ClickHouse sees it.

Copied from the plugin's rules (pkg/macros/macros.go, see shared GRAFANA.md),
in its order: first the browser's `$__conditionalAll(cond, $var)`, then the
dashboard variables (`$var`, `${var}`, `${var:singlequote}`; a multi-value
or All variable becomes a quoted, comma-separated list), then the macros.
Bounds are inclusive and cut to the second (to the millisecond for `_ms`),
dates are formatted in UTC. Unknown `$__x` tokens pass through; a wrong
argument count raises `MacroError`, as the plugin fails the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

VariableValue = str | Sequence[str]


class MacroError(ValueError):
    """The plugin would fail this query (a macro with the wrong number of arguments)."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_s: int = 60

    @property
    def from_s(self) -> int:
        return int(self.start.timestamp())

    @property
    def to_s(self) -> int:
        return int(self.end.timestamp())

    @property
    def from_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def to_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def _call_spans(sql: str, name: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, args) of every `$__name(...)` with balanced parentheses."""
    found = []
    token = f"$__{name}("
    position = sql.find(token)
    while position != -1:
        depth, index = 1, position + len(token)
        args, current = [], ""
        quote: str | None = None
        while index < len(sql) and depth:
            char = sql[index]
            if quote:
                if char == quote:
                    quote = None
                current += char
            elif char in "'\"":
                quote = char
                current += char
            elif char == "(":
                depth += 1
                current += char
            elif char == ")":
                depth -= 1
                if depth:
                    current += char
            elif char == "," and depth == 1:
                args.append(current.strip())
                current = ""
            else:
                current += char
            index += 1
        if depth:
            raise MacroError(f"unbalanced parentheses after $__{name}")
        if current.strip() or args:
            args.append(current.strip())
        found.append((position, index, args))
        position = sql.find(token, index)
    return found


Builder = Callable[[list[str]], str]


def _replace_calls(sql: str, name: str, build: Builder) -> str:
    for start, end, args in reversed(_call_spans(sql, name)):
        sql = sql[:start] + build(args) + sql[end:]
    return sql


def _is_all(value: VariableValue | None) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value in ("", "All", "$__all")
    return len(value) == 0 or "$__all" in value


def expand_conditional_all(sql: str, variables: Mapping[str, VariableValue]) -> str:
    def build(args: list[str]) -> str:
        if len(args) != 2:
            raise MacroError("$__conditionalAll needs 2 arguments")
        name = args[1].strip().lstrip("$").strip("{}")
        return "1=1" if _is_all(variables.get(name)) else args[0]

    return _replace_calls(sql, "conditionalAll", build)


def _quoted(values: Sequence[str]) -> str:
    return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)


def expand_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    def value(name: str, fmt: str | None, original: str) -> str:
        if name.startswith("__") or name not in variables:
            return original
        raw = variables[name]
        if isinstance(raw, str):
            return _quoted([raw]) if fmt == "singlequote" else raw
        return _quoted(list(raw))

    sql = re.sub(
        r"\$\{(\w+)(?::(\w+))?\}", lambda m: value(m.group(1), m.group(2), m.group(0)), sql
    )
    return re.sub(r"\$(\w+)", lambda m: value(m.group(1), None, m.group(0)), sql)


def _duration_seconds(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise MacroError(f"not a duration: {text!r}")
    amount, unit = int(match.group(1)), match.group(2) or "s"
    return max(
        1,
        {
            "ms": amount // 1000,
            "s": amount,
            "m": amount * 60,
            "h": amount * 3600,
            "d": amount * 86400,
        }[unit],
    )


def expand_macros(sql: str, window: TimeRange) -> str:
    day = "%Y-%m-%d"
    from_date = window.start.astimezone(UTC).strftime(day)
    to_date = window.end.astimezone(UTC).strftime(day)
    from_dt, to_dt = f"toDateTime({window.from_s})", f"toDateTime({window.to_s})"
    from_ms = f"fromUnixTimestamp64Milli({window.from_ms})"
    to_ms = f"fromUnixTimestamp64Milli({window.to_ms})"
    interval = max(1, int(window.interval_s))

    def one(name: str, render: Callable[[str], str]) -> Builder:
        def build(args: list[str]) -> str:
            if len(args) != 1:
                raise MacroError(f"$__{name} needs 1 argument, got {len(args)}")
            return render(args[0])

        return build

    def two(name: str, render: Callable[[str, str], str]) -> Builder:
        def build(args: list[str]) -> str:
            if len(args) != 2:
                raise MacroError(f"$__{name} needs 2 arguments, got {len(args)}")
            return render(args[0], args[1])

        return build

    def date_time(d: str, t: str) -> str:
        return (
            f"({d} >= toDate('{from_date}') AND {d} <= toDate('{to_date}')) AND "
            f"({t} >= {from_dt} AND {t} <= {to_dt})"
        )

    calls = {
        "timeFilter_ms": one("timeFilter_ms", lambda c: f"{c} >= {from_ms} AND {c} <= {to_ms}"),
        "timeFilter": one("timeFilter", lambda c: f"{c} >= {from_dt} AND {c} <= {to_dt}"),
        "dateFilter": one(
            "dateFilter",
            lambda c: f"{c} >= toDate('{from_date}') AND {c} <= toDate('{to_date}')",
        ),
        "dateTimeFilter": two("dateTimeFilter", date_time),
        "dt": two("dt", date_time),
        "timeInterval_ms": one(
            "timeInterval_ms",
            lambda c: (
                f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {interval * 1000} millisecond)"
            ),
        ),
        "timeInterval": one(
            "timeInterval",
            lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval} second)",
        ),
        "timeFrom": one("timeFrom", lambda c: f"{c} >= {from_dt}"),
        "timeTo": one("timeTo", lambda c: f"{c} <= {to_dt}"),
        "timeGroup": two(
            "timeGroup",
            lambda c, d: (
                f"toStartOfInterval(toDateTime({c}), INTERVAL {_duration_seconds(d)} second)"
            ),
        ),
    }
    for name, build in calls.items():
        sql = _replace_calls(sql, name, build)
    plain = {
        "fromTime_ms": from_ms,
        "toTime_ms": to_ms,
        "fromTime": from_dt,
        "toTime": to_dt,
        "interval_s": str(interval),
    }
    return re.sub(r"\$__(\w+)\b", lambda m: plain.get(m.group(1), m.group(0)), sql)


def expand(sql: str, variables: Mapping[str, VariableValue], window: TimeRange) -> str:
    """The SQL ClickHouse receives for this panel query."""
    sql = expand_conditional_all(sql, variables)
    sql = expand_variables(sql, variables)
    return expand_macros(sql, window)
