"""Coaching hints (AG3): common authoring mistakes, each with a hint, a short checklist and
the template that shows the right way; for a version being validated, and over the
snapshots recorded so far."""

from collections.abc import Iterable
from dataclasses import dataclass

from trustfabric.domain.policy.facts import Facts
from trustfabric.domain.policy.rules import CompiledVersion, RuleMode, RuleProblem


@dataclass(frozen=True)
class Hint:
    rule_id: str
    kind: str
    hint: str
    checklist: tuple[str, ...]
    template: str  # docs/lac/templates/<template>.md


CATALOGUE: dict[str, tuple[str, tuple[str, ...], str]] = {
    "SYNTAX": ("The expression does not parse as CEL.",
               ("balance parentheses and quotes", "use && and || , not 'and'/'or'",
                "strings in double quotes"), "cel-basics"),
    "UNKNOWN_FACT": ("The rule reads a fact the snapshot schema does not declare.",
                     ("check the spelling against the declared facts",
                      "facts are snake_case: vulns_critical, sbom_present"), "facts"),
    "TYPE": ("The rule compares or combines values of different types.",
             ("numbers without quotes", "booleans as true/false",
              "lists with `in` or size()"), "cel-basics"),
    "NOT_BOOLEAN": ("A rule must evaluate to true or false.",
                    ("compare the value: size(labels) > 0",), "cel-basics"),
    "LIMIT": ("The version or a rule is larger than the service accepts.",
              ("split large policies", "keep expressions short"), "cel-basics"),
    "DUPLICATE": ("Two rules share one id.", ("give every rule its own id",), "rule-ids"),
    "NAME": ("An id has characters ids may not hold.",
             ("letters, digits, '.', '_' or '-'",), "rule-ids"),
    "ALWAYS_TRUE": ("The rule passed every recorded snapshot: it may check nothing.",
                    ("is the comparison the right way round?",
                     "does it read the fact you meant?"), "thresholds"),
    "ALWAYS_FALSE": ("The rule failed every recorded snapshot: no image could be promoted.",
                     ("is the threshold reachable?", "start it in AUDIT mode"), "thresholds"),
    "AUDIT_SHADOWED": ("An audit rule repeats an enforced rule: its warnings never show "
                       "anything the denial does not.",
                       ("drop the audit copy", "or make the enforced one looser"),
                       "audit-mode"),
    "MISSING_MESSAGE": ("The rule has no message: a denied author will not know what to do.",
                        ("say what is wrong and how to fix it",), "messages"),
}


def _hint(rule_id: str, kind: str, suggestion: str | None = None) -> Hint:
    text, checklist, template = CATALOGUE[kind]
    if suggestion:
        text += f" Did you mean `{suggestion}`?"
    return Hint(rule_id, kind, text, checklist, template)


def for_problems(problems: Iterable[RuleProblem]) -> list[Hint]:
    """The hints for a version refused at validation."""
    return [_hint(p.rule_id, p.kind, p.suggestion) for p in problems]


def for_version(version: CompiledVersion, snapshots: Iterable[Facts]) -> list[Hint]:
    """The hints for a valid version, against the facts recorded so far."""
    hints = [_hint(r.rule.id, "MISSING_MESSAGE") for r in version.rules
             if not r.rule.message.strip()]
    enforced = {r.rule.expression.replace(" ", "") for r in version.rules
                if r.rule.mode is RuleMode.ENFORCE}
    hints += [_hint(r.rule.id, "AUDIT_SHADOWED") for r in version.rules
              if r.rule.mode is RuleMode.AUDIT and r.rule.expression.replace(" ", "") in enforced]
    seen = list(snapshots)
    if len(seen) >= 2:  # one snapshot says little about "always"
        for rule in version.rules:
            outcomes = set()
            for facts in seen:
                try:
                    outcomes.add(rule.holds(facts))
                except ValueError:
                    outcomes.add(False)
            if outcomes == {True}:
                hints.append(_hint(rule.rule.id, "ALWAYS_TRUE"))
            elif outcomes == {False}:
                hints.append(_hint(rule.rule.id, "ALWAYS_FALSE"))
    return hints
