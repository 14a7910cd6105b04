"""Suppression drill: a generated, labelled corpus of anomalies over weeks, replayed through
the paging decision without rules and with them: benign pages before and after, true
positives missed (suppressed), and the cost of deciding one anomaly with 500 rules active.

    python -m bench.suppression [--weeks 4 --per-day 150 --rules 500 --seed 5]

The corpus (seeded, reproducible): benign families that repeat across jobs of a service
(the same kind and summary but for numbers), true positives that look like them (same
kind and service, another summary, or a near-identical summary on another service),
always-page kinds and critical anomalies. One rule per benign family, as on-call would
write it after a week of pages: the service's job pattern, the kind and the exact
fingerprint, for the rest of the run. The other rules are unrelated noise, so the matcher
works through 500. Decisions are the service's own (`domain.suppressions`). Prints the
figures and writes JSON to bench/results/.
"""

import argparse
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import percentile, print_table, write_json
from trustfabric.domain.audit import iso
from trustfabric.domain.provenance.enums import Severity
from trustfabric.domain.suppressions.rules import (
    AnomalyFacts,
    Decision,
    RuleStatus,
    Scope,
    SuppressionRule,
    fingerprint,
)
from trustfabric.domain.suppressions.service import Guards, Paging

START = datetime(2026, 11, 2, tzinfo=UTC)
KINDS = ("sbom-delta", "config-drift", "cve-introduced", "flaky-test", "perf-regression")
ALWAYS_PAGE = frozenset({"secret-leak"})


@dataclass(frozen=True)
class Labelled:
    facts: AnomalyFacts
    truth: str  # BENIGN, TRUE_POSITIVE (incl. critical and always-page)


def corpus(rng: random.Random, weeks: int, per_day: int) -> tuple[list[Labelled], list[dict]]:
    services = [f"svc-{n}" for n in range(20)]
    families = [{"service": rng.choice(services), "kind": rng.choice(KINDS),
                 "summary": f"{rng.choice(['vendored', 'cached', 'pinned'])} packages changed "
                            f"in layer {n}"} for n in range(12)]
    found: list[Labelled] = []
    for day in range(weeks * 7):
        for n in range(per_day):
            at = START + timedelta(days=day, seconds=rng.randrange(86_400))
            roll = rng.random()
            family = rng.choice(families)
            service, kind, truth = family["service"], family["kind"], "BENIGN"
            summary = family["summary"].replace("layer", f"layer {rng.randint(1, 9)} of")
            severity = rng.choice([Severity.LOW, Severity.MEDIUM])
            if roll < 0.12:  # a true positive of the same kind and service, other words
                summary, truth = f"unexpected binary added: {rng.randint(1, 999)}", \
                    "TRUE_POSITIVE"
                severity = Severity.HIGH
            elif roll < 0.18:  # the same words on a service where they are not known noise
                known = {f["service"] for f in families
                         if fingerprint(f["kind"], f["summary"].replace("layer", "layer 1 of"))
                         == fingerprint(kind, summary)}
                service, truth = rng.choice([s for s in services if s not in known]), \
                    "TRUE_POSITIVE"
            elif roll < 0.21:  # critical, whatever it looks like
                severity, truth = Severity.CRITICAL, "TRUE_POSITIVE"
            elif roll < 0.23:
                kind, truth = "secret-leak", "TRUE_POSITIVE"
            elif roll < 0.40:  # new benign noise nobody wrote a rule for
                summary = f"timing noise {rng.randint(1, 5)}"
            job = f"{service}-nightly-{day}-{n}"
            found.append(Labelled(AnomalyFacts(
                f"Anomaly:t:{day}-{n}", f"{day}-{n}", kind, severity,
                fingerprint(kind, summary), job, service, None, None, iso(at)), truth))
    return found, families


def rules_for(families: list[dict], rng: random.Random, total: int) -> list[SuppressionRule]:
    """One rule per benign family, written after the first week, and unrelated noise."""
    start, end = iso(START + timedelta(days=7)), iso(START + timedelta(days=365))
    scopes = [Scope(job_pattern=f"{f['service']}-*", kind=f["kind"],
                    fingerprint=fingerprint(f["kind"], f["summary"].replace(
                        "layer", "layer 1 of"))) for f in families]
    scopes += [Scope(job_pattern=f"other-{n}-*", kind=rng.choice(KINDS),
                     fingerprint=f"noise:{n}", fuzzy_threshold=90.0)
               for n in range(total - len(scopes))]
    return [SuppressionRule(f"SuppressionRule:t:r{n}", f"r{n}", "t", scope, start, end,
                            "drill", None, "author", "approver", RuleStatus.ACTIVE, start)
            for n, scope in enumerate(scopes)]


def replay(anomalies: list[Labelled], rules: list[SuppressionRule], guards: Guards
           ) -> tuple[dict[str, int], list[float]]:
    paging = Paging(rules, guards)
    paged: set[str] = set()
    window: list[tuple[str, str]] = []  # (time, fingerprint) paged, oldest first
    counts: dict[str, int] = {"benign_pages": 0, "true_positive_pages": 0,
                              "missed_true_positives": 0, "suppressed": 0,
                              "deduplicated": 0}
    costs = []
    for item in anomalies:
        cutoff = paging.since(item.facts.observed_at)
        while window and window[0][0] < cutoff:
            paged.discard(window.pop(0)[1])
        began = time.perf_counter()
        [(_, decision, _)] = paging.decide([item.facts], paged)
        costs.append(time.perf_counter() - began)
        if decision is Decision.PAGE:
            window.append((item.facts.observed_at, item.facts.fingerprint))
            counts["benign_pages" if item.truth == "BENIGN" else "true_positive_pages"] += 1
        elif decision is Decision.SUPPRESSED:
            counts["suppressed"] += 1
            counts["missed_true_positives"] += item.truth != "BENIGN"
        else:
            counts["deduplicated"] += 1
    return counts, costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--per-day", type=int, default=150)
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    anomalies, families = corpus(rng, args.weeks, args.per_day)
    anomalies.sort(key=lambda a: a.facts.observed_at)
    guards = Guards(max_duration=timedelta(days=14), max_share=0.2, dry_run_days=14,
                    always_page=ALWAYS_PAGE, dedup_window=timedelta(hours=1),
                    idle_expiry=timedelta(days=7))
    before, _ = replay(anomalies, [], guards)
    after, costs = replay(anomalies, rules_for(families, rng, args.rules), guards)
    costs.sort()
    drop = 1 - after["benign_pages"] / before["benign_pages"]
    result: dict[str, Any] = {
        "anomalies": len(anomalies), "true_positives": sum(a.truth != "BENIGN"
                                                           for a in anomalies),
        "before": before, "after": after, "benign_pages_drop": drop,
        "decide_p50_us": percentile(costs, 50) * 1e6,
        "decide_p95_us": percentile(costs, 95) * 1e6, "rules": args.rules}
    print_table(["figure", "without rules", f"with {args.rules} rules", "goal"], [
        ["benign pages", before["benign_pages"], after["benign_pages"], f"-40 %: {drop:.0%}"],
        ["true positives paged", before["true_positive_pages"],
         after["true_positive_pages"], ""],
        ["true positives missed (suppressed)", before["missed_true_positives"],
         after["missed_true_positives"], "0"],
        ["deduplicated", before["deduplicated"], after["deduplicated"], ""],
        ["decision p50 / p95 µs", "", f"{result['decide_p50_us']:.0f} / "
                                      f"{result['decide_p95_us']:.0f}", ""],
    ])
    print(f"JSON: {write_json('suppression', {'args': vars(args), 'result': result})}")


if __name__ == "__main__":
    main()
