"""Drift (AG2): an environment's deployed version differs from its declared one. Each
drift is classified LOW or HIGH risk by stated rules, checked by replaying the
environment's recent decisions under both versions."""

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from trustfabric.domain.policy.evaluation import candidate_values, evaluate
from trustfabric.domain.policy.facts import Facts
from trustfabric.domain.policy.rules import PolicyVersion, RuleMode, compiled


class Risk(enum.Enum):
    LOW = "LOW"
    HIGH = "HIGH"


@dataclass(frozen=True)
class Flip:
    """A recorded decision the other version would have made differently."""

    snapshot: str
    before: bool
    after: bool


@dataclass(frozen=True)
class Assessment:
    risk: Risk
    reasons: tuple[str, ...]
    flips: tuple[Flip, ...]
    replayed: int


def replay(old: PolicyVersion, new: PolicyVersion,
           decisions: Iterable[tuple[str, Facts]]) -> tuple[list[Flip], int]:
    """Each (snapshot id, facts) decided under both versions: those that differ."""
    before, after = compiled(old), compiled(new)
    flips, count = [], 0
    for snapshot, facts in decisions:
        count += 1
        a, b = evaluate(before, facts).allowed, evaluate(after, facts).allowed
        if a != b:
            flips.append(Flip(snapshot, a, b))
    return flips, count


def assess(declared: PolicyVersion, deployed: PolicyVersion,
           decisions: Iterable[tuple[str, Facts]]) -> Assessment:
    """Moving the environment from `deployed` to `declared`: LOW only when every change is
    metadata, audit-mode, or a tightening whose replay flips no past decision; anything
    else — an enforced rule removed or loosened, any flip, anything unrecognised — HIGH.
    A changed rule is loosened when, on a recorded snapshot or one of its facts moved to a
    value either expression turns on, the new rule passes what the old one failed."""
    seen = list(decisions)
    flips, replayed = replay(deployed, declared, seen)
    reasons = []
    old = {rule.id: rule for rule in deployed.rules}
    new = {rule.id: rule for rule in declared.rules}
    for rule_id, rule in old.items():
        if rule.mode is RuleMode.ENFORCE and (rule_id not in new
                                              or new[rule_id].mode is RuleMode.AUDIT):
            reasons.append(f"enforced rule {rule_id} is removed or made audit-only")
    before_rules = {r.rule.id: r for r in compiled(deployed).rules}
    for changed in compiled(declared).rules:
        previous = before_rules.get(changed.rule.id)
        if changed.rule.mode is not RuleMode.ENFORCE or previous is None \
                or previous.rule.expression == changed.rule.expression:
            continue
        probes = [{**facts, name: value} for _, facts in seen for name in changed.facts
                  for expression in (previous.rule.expression, changed.rule.expression)
                  for value in candidate_values(expression, name, facts[name])]
        if any(_loosens(previous.holds, changed.holds, facts)
               for facts in [f for _, f in seen] + probes):
            reasons.append(f"enforced rule {changed.rule.id} is loosened")
    if flips:
        reasons.append(f"{len(flips)} of {replayed} recent decisions would change")
    if replayed == 0 and any(r.mode is RuleMode.ENFORCE and old.get(r.id) != r
                             for r in declared.rules):
        reasons.append("no recent decision to replay an enforced change against")
    return Assessment(Risk.HIGH if reasons else Risk.LOW, tuple(reasons), tuple(flips),
                      replayed)


def _loosens(before: Callable[[Facts], bool], after: Callable[[Facts], bool],
             facts: Facts) -> bool:
    """The new rule passes what the old one failed."""
    try:
        return not before(facts) and after(facts)
    except ValueError:
        return True  # unknown is high risk
