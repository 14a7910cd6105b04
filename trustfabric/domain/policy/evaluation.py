"""A promotion's decision: every rule of the version in force, evaluated on the image's
facts, with the values each read; and the smallest change of facts that would pass."""

import re
from dataclasses import dataclass
from typing import Any

from trustfabric.domain.policy.facts import FACTS, Facts
from trustfabric.domain.policy.rules import CompiledRule, CompiledVersion, RuleMode


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    mode: RuleMode
    passed: bool
    values: dict[str, Any]  # the facts it read, as they were
    error: str | None = None  # it could not be evaluated: counted as failed

    @property
    def denies(self) -> bool:
        return not self.passed and self.mode is RuleMode.ENFORCE


@dataclass(frozen=True)
class Decision:
    results: tuple[RuleResult, ...]

    @property
    def allowed(self) -> bool:
        return not any(result.denies for result in self.results)

    @property
    def failed(self) -> list[RuleResult]:
        """Failing rules, enforced first: audit-mode failures are warnings."""
        return sorted((r for r in self.results if not r.passed), key=lambda r: not r.denies)


def evaluate(version: CompiledVersion, facts: Facts) -> Decision:
    return Decision(tuple(_result(rule, facts) for rule in version.rules))


def _result(rule: CompiledRule, facts: Facts) -> RuleResult:
    values = {name: facts[name] for name in rule.facts}
    try:
        return RuleResult(rule.rule.id, rule.rule.mode, rule.holds(facts), values)
    except ValueError as error:
        return RuleResult(rule.rule.id, rule.rule.mode, False, values, str(error)[:300])


def minimal_change(rule: CompiledRule, facts: Facts) -> dict[str, Any] | None:
    """One fact's value that makes the rule pass, the nearest to the current value; None
    when no single fact does. Candidates come from the expression itself: its literals,
    one either side of each number, and the other boolean."""
    best: tuple[float, dict[str, Any]] | None = None
    for name in rule.facts:
        for candidate in candidate_values(rule.rule.expression, name, facts[name]):
            trial = {**facts, name: candidate}
            try:
                passes = rule.holds(trial)
            except ValueError:
                continue
            if passes:
                distance = _distance(facts[name], candidate)
                if best is None or distance < best[0]:
                    best = (distance, {name: candidate})
    return best[1] if best else None


def candidate_values(expression: str, name: str, current: Any) -> list[Any]:
    """Values of fact `name` where `expression` may change its mind: its literals, one
    either side of each number, and the other boolean."""
    kind = FACTS[name].type
    if kind is bool:
        return [not current]
    literals = _literals(expression)
    if kind is int:
        numbers = {int(x) for x in literals if x.lstrip("-").isdigit()}
        return sorted({n + d for n in numbers | {0} for d in (-1, 0, 1)} - {current})
    strings = [x[1:-1] for x in literals if x[:1] in "\"'"]
    if kind is list:
        return [[*current, s] for s in strings if s not in current] + [
            [v for v in current if v != s] for s in strings if s in current]
    return [s for s in strings if s != current]


_LITERAL = re.compile(r"\"[^\"]*\"|'[^']*'|-?\d+")


def _literals(expression: str) -> list[str]:
    return _LITERAL.findall(expression)


def _distance(current: Any, candidate: Any) -> float:
    if isinstance(current, int) and isinstance(candidate, int):
        return abs(current - candidate)
    return 1.0
