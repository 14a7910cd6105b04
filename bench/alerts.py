"""Prometheus alert rules evaluated over scrapes a benchmark took itself, as Prometheus
would over the same scrapes: each rule's expression at every evaluation time, `pending`
while it holds, `firing` once it has held for its `for:`.

The expressions understood are the subset the service's rules use, and a little more:
an instant selector with label matchers (`=`, `!=`, `=~`, `!~`), `rate`/`increase`/`changes`
over a range of a selector, the aggregations `sum`/`max`/`min`/`avg`/`count` with `by (…)` or
`without (…)` (before or after the argument), and a comparison with a number (`>`, `<`,
`>=`, `<=`, `==`, `!=`). A rule with anything else is reported as not evaluated. Every
series carries the `instance` it was scraped from, and `up` is 1 or 0 per instance as
Prometheus records it.
"""

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]  # sorted, with __name__
Vector = dict[Labels, float]
LOOKBACK_S = 300.0


class Unsupported(ValueError):
    """An expression outside the subset understood here."""


def parse_duration(text: str) -> float:
    total, rest = 0.0, text.strip()
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", rest):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if not total and rest not in ("0", "0s"):
        raise Unsupported(f"duration {text!r}")
    return total


# --- scrapes --------------------------------------------------------------------------------

@dataclass
class Scrapes:
    """Every target's scrapes: (time, series → value), time in seconds of the run."""

    by_instance: dict[str, list[tuple[float, Vector]]] = field(
        default_factory=lambda: defaultdict(list))

    def add(self, instance: str, t: float, text: str | None) -> None:
        """A scrape's text, or None when the target did not answer (`up` 0)."""
        vector: Vector = {}
        if text is not None:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = {**sample.labels, "__name__": sample.name, "instance": instance}
                    vector[tuple(sorted(labels.items()))] = float(sample.value)
        vector[(("__name__", "up"), ("instance", instance))] = 0.0 if text is None else 1.0
        self.by_instance[instance].append((t, vector))

    def times(self) -> list[float]:
        return sorted({t for scrapes in self.by_instance.values() for t, _ in scrapes})

    def instant(self, t: float) -> Vector:
        """Each target's latest scrape at or before `t` (within the lookback)."""
        found: Vector = {}
        for scrapes in self.by_instance.values():
            latest = [v for at, v in scrapes if t - LOOKBACK_S < at <= t]
            if latest:
                found.update(latest[-1])
        return found

    def range(self, t: float, seconds: float) -> dict[Labels, list[tuple[float, float]]]:
        series: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
        for scrapes in self.by_instance.values():
            for at, vector in scrapes:
                if t - seconds < at <= t:
                    for labels, value in vector.items():
                        series[labels].append((at, value))
        return series


# --- expressions ----------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)|(?P<dur>\[\w+\])|"
                   r"(?P<str>\"(?:[^\"\\]|\\.)*\")|(?P<op>==|!=|>=|<=|=~|!~|[<>=(){},])|"
                   r"(?P<name>[A-Za-z_:][\w:]*))")
AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {"sum": sum, "max": max, "min": min, "count": len,
                "avg": lambda v: sum(v) / len(v)}
COMPARISONS = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__,
               "<=": float.__le__, "==": float.__eq__, "!=": float.__ne__}


def tokens(expr: str) -> list[tuple[str, str]]:
    found, position = [], 0
    expr = expr.strip()
    while position < len(expr):
        match = TOKEN.match(expr, position)
        if not match or match.end() == position:
            raise Unsupported(f"cannot read {expr[position:]!r}")
        kind = match.lastgroup or "?"
        found.append((kind, match[kind]))
        position = match.end()
    return found


class _Parser:
    def __init__(self, expr: str) -> None:
        self.items = tokens(expr)
        self.at = 0

    def peek(self) -> str | None:
        return self.items[self.at][1] if self.at < len(self.items) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.items):
            raise Unsupported("unexpected end")
        item = self.items[self.at]
        if expected is not None and item[1] != expected:
            raise Unsupported(f"expected {expected!r}, found {item[1]!r}")
        self.at += 1
        return item

    def top(self) -> tuple[Any, ...]:
        node = self.vector()
        if self.peek() in COMPARISONS:
            op = self.take()[1]
            kind, number = self.take()
            if kind != "num":
                raise Unsupported("only a comparison with a number")
            node = ("cmp", op, node, float(number))
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()!r}")
        return node

    def labels(self) -> tuple[str, list[str]]:
        mode = self.take()[1]
        self.take("(")
        names = []
        while self.peek() != ")":
            names.append(self.take()[1])
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return mode, names

    def vector(self) -> tuple[Any, ...]:
        kind, word = self.take()
        if kind != "name":
            raise Unsupported(f"unexpected {word!r}")
        if word in AGGREGATIONS:
            grouping = self.labels() if self.peek() in ("by", "without") else None
            self.take("(")
            inner = self.vector()
            self.take(")")
            if grouping is None and self.peek() in ("by", "without"):
                grouping = self.labels()
            return ("agg", word, grouping, inner)
        if word in ("rate", "increase", "changes"):
            self.take("(")
            selector = self.selector(self.take()[1])
            kind, window = self.take()
            if kind != "dur":
                raise Unsupported(f"{word} needs a range")
            self.take(")")
            return ("range", word, selector, parse_duration(window[1:-1]))
        if self.peek() == "(":
            raise Unsupported(f"function {word}")
        return self.selector(word)

    def selector(self, name: str) -> tuple[Any, ...]:
        matchers = [("__name__", "=", name)]
        if self.peek() == "{":
            self.take("{")
            while self.peek() != "}":
                label = self.take()[1]
                op = self.take()[1]
                kind, value = self.take()
                if kind != "str" or op not in ("=", "!=", "=~", "!~"):
                    raise Unsupported(f"matcher {label}{op}{value}")
                matchers.append((label, op, value[1:-1]))
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
        return ("sel", tuple(matchers))


def parse(expr: str) -> tuple[Any, ...]:
    return _Parser(expr).top()


def _matches(labels: Labels, matchers: Iterable[tuple[str, str, str]]) -> bool:
    values = dict(labels)
    for label, op, wanted in matchers:
        value = values.get(label, "")
        if ((op == "=" and value != wanted) or (op == "!=" and value == wanted)
                or (op == "=~" and not re.fullmatch(wanted, value))
                or (op == "!~" and re.fullmatch(wanted, value))):
            return False
    return True


def _without_name(labels: Labels) -> Labels:
    return tuple(item for item in labels if item[0] != "__name__")


def evaluate(node: tuple[Any, ...], scrapes: Scrapes, t: float) -> Vector:
    kind = node[0]
    if kind == "sel":
        return {labels: value for labels, value in scrapes.instant(t).items()
                if _matches(labels, node[1])}
    if kind == "range":
        _, function, selector, seconds = node
        result: Vector = {}
        for labels, points in scrapes.range(t, seconds).items():
            if not _matches(labels, selector[1]):
                continue
            if function == "changes":  # how often the value changed, as Prometheus counts
                result[_without_name(labels)] = float(sum(
                    a != b for (_, a), (_, b) in zip(points, points[1:], strict=False)))
                continue
            if len(points) < 2:
                continue
            increase = sum(b - a if b >= a else b for (_, a), (_, b)
                           in zip(points, points[1:], strict=False))  # counter resets
            span = points[-1][0] - points[0][0]
            rate = increase / span if span > 0 else 0.0
            result[_without_name(labels)] = rate if function == "rate" else rate * seconds
        return result
    if kind == "agg":
        _, function, grouping, inner = node
        groups: dict[Labels, list[float]] = defaultdict(list)
        for labels, value in evaluate(inner, scrapes, t).items():
            if grouping is None:
                key: Labels = ()
            elif grouping[0] == "by":
                key = tuple(item for item in labels if item[0] in grouping[1])
            else:
                key = tuple(item for item in _without_name(labels)
                            if item[0] not in grouping[1])
            groups[key].append(value)
        return {key: float(AGGREGATIONS[function](values)) for key, values in groups.items()}
    if kind == "cmp":
        _, op, inner, number = node
        return {labels: value for labels, value in evaluate(inner, scrapes, t).items()
                if not math.isnan(value) and COMPARISONS[op](value, number)}
    raise Unsupported(kind)


# --- rules ----------------------------------------------------------------------------------

@dataclass
class Rule:
    name: str
    expr: str
    for_s: float
    severity: str
    tree: tuple[Any, ...] | None
    problem: str | None = None


def load_rules(path: Path) -> list[Rule]:
    rules = []
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            try:
                tree, problem = parse(rule["expr"]), None
            except Unsupported as error:
                tree, problem = None, str(error)
            rules.append(Rule(rule["alert"], " ".join(rule["expr"].split()),
                              parse_duration(str(rule.get("for", "0s"))),
                              rule.get("labels", {}).get("severity", ""), tree, problem))
    return rules


@dataclass
class Episode:
    """An alert's condition holding from `pending` (first evaluation true) to `resolved`
    (first false, None if it still held at the end); `firing` once it held for `for:`."""

    alert: str
    severity: str
    pending: float
    firing: float | None = None
    resolved: float | None = None
    peak: float = -math.inf


def alert_episodes(rules: list[Rule], scrapes: Scrapes,
                   times: list[float] | None = None) -> list[Episode]:
    """Every rule evaluated at every scrape time (the evaluation interval is the scrape
    interval); an alert's series are taken together (any of them holding holds it)."""
    episodes: list[Episode] = []
    for rule in rules:
        if rule.tree is None:
            continue
        current: Episode | None = None
        for t in times if times is not None else scrapes.times():
            result = evaluate(rule.tree, scrapes, t)
            if result:
                if current is None:
                    current = Episode(rule.name, rule.severity, t)
                    episodes.append(current)
                current.peak = max(current.peak, *result.values())
                if current.firing is None and t - current.pending >= rule.for_s:
                    current.firing = t
            elif current is not None:
                current.resolved = t
                current = None
    return sorted(episodes, key=lambda e: e.pending)
