"""Root-cause insight of a failed promotion (AG1): the failing constraints with the values
that failed them, the policy↔data diff against the last passing promotion of the same
lineage and the cause it shows, and ranked mitigations."""

import enum
from dataclasses import dataclass, replace
from typing import Any

from trustfabric.domain.policy.evaluation import Decision, minimal_change
from trustfabric.domain.policy.facts import Facts
from trustfabric.domain.policy.rules import CompiledRule, CompiledVersion, PolicyVersion, compiled


class Cause(enum.Enum):
    POLICY_CHANGE = "POLICY_CHANGE"  # the version changed; the old data fails it too
    DATA_CHANGE = "DATA_CHANGE"  # the facts changed; the old version would fail them too
    BOTH = "BOTH"  # only together, or each alone
    NO_BASELINE = "NO_BASELINE"  # no earlier passing promotion of this lineage to compare


class RuleChangeKind(enum.Enum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


@dataclass(frozen=True)
class Constraint:
    rule_id: str
    expression: str
    message: str
    severity: str
    mode: str
    values: dict[str, Any]  # what the image's facts held
    expected: dict[str, Any] | None  # the nearest values that pass, when one fact can
    error: str | None
    cause: Cause


@dataclass(frozen=True)
class RuleChange:
    rule_id: str
    kind: RuleChangeKind
    old_expression: str | None
    new_expression: str | None


@dataclass(frozen=True)
class FactChange:
    fact: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Mitigation:
    rank: int
    rule_id: str
    action: str
    change: dict[str, Any] | None  # the facts that would pass it, when derived
    template: str | None


@dataclass(frozen=True)
class Baseline:
    """The last passing promotion of the same lineage: its version and facts."""

    promotion_id: str
    version: PolicyVersion
    facts: Facts
    image_digest: str


@dataclass(frozen=True)
class Links:
    """Where to look in the lineage: the image, the commit it was built from, its base
    images, and the image of the last passing promotion the diff is against."""

    image: str
    commit: str | None = None
    base_images: tuple[str, ...] = ()
    baseline_image: str | None = None


@dataclass(frozen=True)
class Insight:
    constraints: tuple[Constraint, ...]
    cause: Cause
    deciding_rule: str | None
    deciding_fact: str | None
    rule_changes: tuple[RuleChange, ...]
    fact_changes: tuple[FactChange, ...]
    mitigations: tuple[Mitigation, ...]
    baseline_promotion: str | None
    links: Links


# What to do about a failing rule, by its template; the fact change is added when derived.
CATALOGUE: dict[str, str] = {
    "signature": "Sign the image (e.g. `cosign sign`) and record the new snapshot",
    "vulnerabilities": "Rebuild on a base image without these vulnerabilities, or patch "
                       "the affected packages, then rescan",
    "sbom": "Generate the SBOM at build time (e.g. `syft`) and attach it to the image",
    "base-image": "Rebuild FROM an approved base image",
    "labels": "Add the missing label in the Dockerfile or the build",
    "provenance": "Build on a builder that emits provenance at the required SLSA level",
    "age": "Rebuild the image from its current commit",
}
AUDIT_FIRST = ("If the rule is new or was tightened, run it in AUDIT mode first: its "
               "failures then warn and the promotion passes")


def explain(version: CompiledVersion, facts: Facts, decision: Decision,
            baseline: Baseline | None, links: Links) -> Insight:
    rules = {rule.rule.id: rule for rule in version.rules}
    old = compiled(baseline.version) if baseline else None
    old_rules = {rule.rule.id: rule for rule in old.rules} if old else {}
    constraints = []
    for result in decision.failed:
        rule = rules[result.rule_id]
        cause = (_cause(rule, old_rules.get(rule.rule.id), facts, baseline.facts)
                 if baseline else Cause.NO_BASELINE)
        constraints.append(Constraint(
            rule.rule.id, rule.rule.expression, rule.rule.message, rule.rule.severity.value,
            rule.rule.mode.value, result.values, minimal_change(rule, facts), result.error,
            cause))
    rule_changes = _rule_changes(baseline.version, version.version) if baseline else ()
    fact_changes = tuple(FactChange(name, baseline.facts[name], value)
                         for name, value in facts.items()
                         if baseline and baseline.facts.get(name) != value)
    denying = [c for c in constraints if c.mode == "ENFORCE"] or constraints
    causes = {c.cause for c in denying}
    cause = causes.pop() if len(causes) == 1 else Cause.BOTH
    deciding = denying[0] if denying else None
    changed = {change.fact for change in fact_changes}
    deciding_fact = next((name for name in (deciding.values if deciding else {})
                          if name in changed), None)
    return Insight(
        tuple(constraints), cause, deciding.rule_id if deciding else None, deciding_fact,
        rule_changes, fact_changes, _mitigations(constraints, rules),
        baseline.promotion_id if baseline else None,
        replace(links, baseline_image=baseline.image_digest if baseline else None))


def _cause(rule: CompiledRule, old_rule: CompiledRule | None, facts: Facts,
           old_facts: Facts) -> Cause:
    """The old version with the new facts, and the new version with the old facts: which
    one alone fails says which change did it."""
    old_version_passes = old_rule is None or _holds(old_rule, facts)
    old_facts_pass = _holds(rule, old_facts)
    if old_version_passes and not old_facts_pass:
        return Cause.POLICY_CHANGE
    if old_facts_pass and not old_version_passes:
        return Cause.DATA_CHANGE
    return Cause.BOTH


def _holds(rule: CompiledRule, facts: Facts) -> bool:
    try:
        return rule.holds(facts)
    except ValueError:
        return False


def _rule_changes(old: PolicyVersion, new: PolicyVersion) -> tuple[RuleChange, ...]:
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    changes = [RuleChange(i, RuleChangeKind.ADDED, None, after[i].expression)
               for i in after if i not in before]
    changes += [RuleChange(i, RuleChangeKind.REMOVED, before[i].expression, None)
                for i in before if i not in after]
    changes += [RuleChange(i, RuleChangeKind.CHANGED, before[i].expression, after[i].expression)
                for i in after if i in before and before[i] != after[i]]
    return tuple(changes)


_SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}


def _mitigations(constraints: list[Constraint],
                 rules: dict[str, CompiledRule]) -> tuple[Mitigation, ...]:
    """Enforced rules first, the most severe first; for each, the catalogue's action with
    the fact change that passes it, and for a rule the policy change failed, its rollback."""
    ordered = sorted(constraints, key=lambda c: (c.mode != "ENFORCE",
                                                 _SEVERITY_RANK.get(c.severity, 4)))
    found: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
    for c in ordered:
        template = rules[c.rule_id].rule.template
        action = CATALOGUE.get(template or "", "Change the image so the rule holds")
        if c.expected is not None:
            wanted = ", ".join(f"{k} = {v!r}" for k, v in c.expected.items())
            action += f" (the rule passes with {wanted})"
        found.append((c.rule_id, action, c.expected, template))
        if c.cause in (Cause.POLICY_CHANGE, Cause.BOTH):
            found.append((c.rule_id, AUDIT_FIRST, None, template))
    return tuple(Mitigation(n, *item) for n, item in enumerate(found, start=1))


def markdown(insight: Insight, promotion: dict[str, str]) -> str:
    """A pull-request comment: what failed, why, and what to do first."""
    lines = [f"### Promotion `{promotion['id']}` of `{promotion['image']}` "
             f"({promotion['from']} → {promotion['to']}) was denied", "",
             f"**Cause:** {insight.cause.value.replace('_', ' ').lower()}"
             + (f" — rule `{insight.deciding_rule}`" if insight.deciding_rule else "")
             + (f", fact `{insight.deciding_fact}`" if insight.deciding_fact else ""), "",
             "| rule | mode | severity | values | passes with |", "|---|---|---|---|---|"]
    for c in insight.constraints:
        values = ", ".join(f"{k}={v!r}" for k, v in c.values.items())
        expected = ", ".join(f"{k}={v!r}" for k, v in (c.expected or {}).items()) or "—"
        lines.append(f"| `{c.rule_id}` | {c.mode} | {c.severity} | {values} | {expected} |")
    if insight.rule_changes or insight.fact_changes:
        lines += ["", f"**Since the last passing promotion** (`{insight.baseline_promotion}`):"]
        lines += [f"- rule `{r.rule_id}` {r.kind.value.lower()}: `{r.old_expression or ''}` → "
                  f"`{r.new_expression or ''}`" for r in insight.rule_changes]
        lines += [f"- fact `{f.fact}`: {f.old!r} → {f.new!r}" for f in insight.fact_changes]
    links = insight.links
    lines += ["", f"**Lineage:** image `{links.image}`"
              + (f", built from commit `{links.commit}`" if links.commit else "")
              + (f", on {', '.join(f'`{b}`' for b in links.base_images)}"
                 if links.base_images else "")
              + (f"; last passed as image `{links.baseline_image}`"
                 if links.baseline_image else "")]
    lines += ["", "**What to do**"]
    lines += [f"{m.rank}. {m.action} (`{m.rule_id}`)" for m in insight.mitigations]
    return "\n".join(lines) + "\n"
