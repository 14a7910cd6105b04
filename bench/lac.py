"""Policies as code on a generated corpus with known answers: how often a failed promotion
is explained, and rightly; whether the top mitigation fixes it; how much low-risk drift
merges, with no regression; how well misspelt facts are named; and how fast.

    python -m bench.lac [--cases 600 --drifts 240 --background 10000 --seed 9]

Starts its own embedded database and drives the real policy service (the GraphQL layer is
measured by the lineage and PSI benchmarks). Every case is one repository: an image passes
under one version, then a later image of it is denied, by a policy change, a data change
or both, which the generator knows. Drifts are pairs of versions of known risk, replayed
against recorded decisions, proposed, reviewed, soaked beside a stream of new decisions and
merged or rolled back. Prints the figures and writes JSON to bench/results/.
"""

import argparse
import random
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import (
    DB_HEAP_HELP,
    embedded_database,
    percentile,
    print_table,
    run_in_workdir,
    write_json,
)
from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.policy.drift import Risk, assess
from trustfabric.domain.policy.evaluation import evaluate
from trustfabric.domain.policy.facts import FACTS, check_facts
from trustfabric.domain.policy.proposals import DriftProposals
from trustfabric.domain.policy.rules import (
    PolicyRejected,
    PolicyVersion,
    Rule,
    RuleMode,
    compile_version,
    compiled,
)
from trustfabric.domain.policy.service import PolicyService
from trustfabric.domain.provenance.enums import Severity
from trustfabric.domain.provenance.events import BuildEvent, IngestBatch, SnapshotEvent
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.errors import BadUserInput
from trustfabric.migrations import migrate
from trustfabric.runtime.demo import digest
from trustfabric.runtime.services import Services

TENANT = "bench"
AUTHOR = Caller("bench-author", TENANT, Role.MEMBER)
REVIEWER = Caller("bench-reviewer", TENANT, Role.REVIEWER)
# the thresholds the generated rules use, and the facts they read
NUMERIC = ("vulns_critical", "vulns_high", "vulns_medium", "age_days")
BOOLEAN = ("signed", "sbom_present")


def rule(fact: str, bound: int | None = None, mode: RuleMode = RuleMode.ENFORCE) -> Rule:
    expression = fact if bound is None else f"{fact} <= {bound}"
    template = {"signed": "signature", "sbom_present": "sbom", "age_days": "age"}.get(
        fact, "vulnerabilities")
    return Rule(f"r-{fact}", expression, Severity.HIGH, f"{fact} out of bounds", mode, template)


def base_policy(rng: random.Random, name: str) -> PolicyVersion:
    rules = [rule(fact) for fact in BOOLEAN if rng.random() < 0.7]
    rules += [rule(fact, rng.randint(3, 9)) for fact in rng.sample(NUMERIC, rng.randint(1, 3))]
    return PolicyVersion("gate", name, tuple(rules))


def passing_facts(rng: random.Random, policy: PolicyVersion) -> dict[str, Any]:
    facts: dict[str, Any] = {fact: True for fact in BOOLEAN}
    for r in policy.rules:
        if "<=" in r.expression:
            bound = int(r.expression.split("<=")[1])
            facts[r.expression.split()[0]] = rng.randint(max(0, bound - 3), bound - 1)
    return facts


def tightened(policy: PolicyVersion, name: str, fact: str, bound: int) -> PolicyVersion:
    return PolicyVersion("gate", name, tuple(rule(fact, bound) if r.id == f"r-{fact}" else r
                                             for r in policy.rules))


def case(rng: random.Random, n: int) -> dict[str, Any]:
    """One repository's story, and the cause it must be explained by."""
    old = base_policy(rng, f"c{n}a")
    facts = passing_facts(rng, old)
    cause = ("POLICY_CHANGE", "DATA_CHANGE", "BOTH")[n % 3]
    numeric = [r for r in old.rules if "<=" in r.expression]
    target = rng.choice(numeric)
    fact, bound = target.expression.split()[0], int(target.expression.split("<=")[1])
    if cause == "POLICY_CHANGE":  # the same facts, a bound below them
        new, later = tightened(old, f"c{n}b", fact, facts[fact] - 1), dict(facts)
    elif cause == "DATA_CHANGE":  # the same policy, a fact past its bound or a flag off
        new, later = replace(old, version=f"c{n}b"), dict(facts)
        flags = [r for r in old.rules if "<=" not in r.expression]
        if flags and rng.random() < 0.4:
            later[flags[0].expression] = False
        else:
            later[fact] = bound + rng.randint(1, 3)
    else:  # each alone passes: the bound meets the old value, the value rises to the old bound
        new, later = tightened(old, f"c{n}b", fact, facts[fact]), dict(facts)
        later[fact] = bound
    return {"n": n, "old": old, "new": new, "facts": facts, "later": later, "cause": cause}


async def record(services: Services, n: int, facts_by_image: dict[str, dict[str, Any]]) -> None:
    batch = IngestBatch(
        builds=[BuildEvent(image_digest=image, repo_url=f"https://git.example.com/r{n}",
                           commit_sha=digest(n, image)[7:47]) for image in facts_by_image],
        snapshots=[SnapshotEvent(image_digest=image, facts=facts)
                   for image, facts in facts_by_image.items()])
    await services.repos.ingest.apply(plan_batch(batch, TENANT, 1000))


async def declare(policy: PolicyService, version: PolicyVersion, env: str = "prod",
                  deployed: PolicyVersion | None = None) -> None:
    await policy.set_environment(AUTHOR, None, env, policy_id="gate", declared=version.version,
                                 deployed=deployed.version if deployed else None)


async def run_cases(services: Services, policy: PolicyService, cases: list[dict[str, Any]]
                    ) -> tuple[dict[str, Any], list[float]]:
    explained = right = fixed = 0
    timings: list[float] = []
    wrong: Counter[str] = Counter()
    for c in cases:
        first, second = digest("img", c["n"], 1), digest("img", c["n"], 2)
        await record(services, c["n"], {first: c["facts"], second: c["later"]})
        for version in (c["old"], c["new"]):
            await policy.submit_version(AUTHOR, None, version)
        await declare(policy, c["old"])
        await policy.promote(AUTHOR, None, first, "staging", "prod", f"c{c['n']}-1")
        await declare(policy, c["new"])
        began = time.perf_counter()
        denied = await policy.promote(AUTHOR, None, second, "staging", "prod", f"c{c['n']}-2")
        timings.append(time.perf_counter() - began)
        if denied.allowed or denied.insight is None:
            continue
        explained += 1
        if denied.insight["cause"] == c["cause"]:
            right += 1
        else:
            wrong[f"{c['cause']}->{denied.insight['cause']}"] += 1
        top = next((m for m in denied.insight["mitigations"] if m["change"]), None)
        if top is not None:  # apply the top mitigation's fact change, promote again
            await record(services, c["n"], {second: {**c["later"], **top["change"]}})
            again = await policy.promote(AUTHOR, None, second, "staging", "prod",
                                         f"c{c['n']}-3")
            fixed += again.allowed
    total = len(cases)
    return {"failed_promotions": total, "explained": explained / total,
            "cause_right": right / max(explained, 1), "cause_wrong": dict(wrong),
            "top_mitigation_fixes": fixed / max(explained, 1)}, timings


def drift_pair(rng: random.Random, n: int) -> tuple[PolicyVersion, PolicyVersion, Risk]:
    """(deployed, declared, the risk the stated rules give)."""
    old = base_policy(rng, f"d{n}a")
    numeric = [r for r in old.rules if "<=" in r.expression]
    target = rng.choice(numeric)
    fact, bound = target.expression.split()[0], int(target.expression.split("<=")[1])
    kind = n % 5
    if kind == 0:  # reworded messages
        new = PolicyVersion("gate", f"d{n}b", tuple(replace(r, message=r.message + ".")
                                                    for r in old.rules))
        return old, new, Risk.LOW
    if kind == 1:  # a new audit-only rule
        return old, PolicyVersion("gate", f"d{n}b", (*old.rules, rule(
            "provenance_level", 2, RuleMode.AUDIT))), Risk.LOW
    if kind == 2:  # tightened by one: every recorded value still passes, nothing flips
        return old, tightened(old, f"d{n}b", fact, bound - 1), Risk.LOW
    if kind == 3:  # loosened
        return old, tightened(old, f"d{n}b", fact, bound + 5), Risk.HIGH
    if len(old.rules) == 1:  # a version keeps at least one rule
        old = PolicyVersion("gate", old.version, (rule("signed"), *old.rules))
    return old, PolicyVersion("gate", f"d{n}b", tuple(  # an enforced rule removed
        r for r in old.rules if r.id != target.id)), Risk.HIGH


async def run_drifts(services: Services, policy: PolicyService, proposals: DriftProposals,
                     rng: random.Random, count: int) -> dict[str, Any]:
    right = low = cleared = regressions = 0
    for n in range(count):
        old, new, risk = drift_pair(rng, n)
        env = f"env{n}"
        recorded = {digest("drift", n, k): passing_facts(rng, old) for k in range(3)}
        await record(services, 100_000 + n, recorded)
        for version in (old, new):
            await policy.submit_version(AUTHOR, None, version)
        await declare(policy, old, env)
        for k, image in enumerate(recorded):
            await policy.promote(AUTHOR, None, image, "staging", env, f"d{n}-{k}")
        await declare(policy, new, env, deployed=old)
        decisions = [(image, check_facts(facts)) for image, facts in recorded.items()]
        assessed = assess(new, old, decisions).risk
        right += assessed is risk
        if risk is not Risk.LOW:
            continue
        low += 1
        try:
            proposal = await proposals.propose(AUTHOR, None, env)
        except BadUserInput:  # judged HIGH after all: not cleared
            continue
        await proposals.review(REVIEWER, None, proposal.id, True, proposal.content_hash)
        # the soak's traffic: new images like the recorded ones
        for k in range(2):
            image = digest("drift-soak", n, k)
            facts = passing_facts(rng, old)
            await record(services, 100_000 + n, {image: facts})
            await policy.promote(AUTHOR, None, image, "staging", env, f"d{n}-s{k}")
        merged = [p for p in await proposals.merge_due() if p.id == proposal.id]
        if merged:
            cleared += 1
            # a regression: a decision of the held-out traffic that the merge changed
            held_out = [check_facts(passing_facts(rng, old)) for _ in range(20)]
            regressions += any(evaluate(compiled(old), f).allowed
                               != evaluate(compiled(new), f).allowed for f in held_out)
    return {"drifts": count, "risk_right": right / count, "low_risk": low,
            "low_risk_cleared": cleared / max(low, 1), "regressions": regressions}


def hint_accuracy(rng: random.Random) -> dict[str, Any]:
    """Each fact misspelt three ways (a letter dropped, doubled, swapped): how often the
    refusal names the fact meant."""
    named = tried = 0
    for fact in FACTS:
        for kind in range(3):
            i = rng.randrange(1, len(fact) - 1)
            typo = (fact[:i] + fact[i + 1:], fact[:i] + fact[i] + fact[i:],
                    fact[:i - 1] + fact[i] + fact[i - 1] + fact[i + 1:])[kind]
            if typo == fact or typo in FACTS:
                continue
            tried += 1
            try:
                compile_version(PolicyVersion("p", "v", (Rule("r", typo, Severity.LOW, "m"),)))
            except PolicyRejected as refusal:
                named += refusal.problems[0].suggestion == fact
    return {"misspellings": tried, "named_right": named / tried}


def evaluation_cost(rounds: int = 2000) -> dict[str, float]:
    """One decision with the version compiled once (cached), and compiling it every time."""
    version = PolicyVersion("gate", "cost", tuple(rule(f) for f in BOOLEAN) + tuple(
        rule(f, 5) for f in NUMERIC))
    facts = check_facts({"signed": True, "vulns_high": 2})
    compiled(version)
    began = time.perf_counter()
    for _ in range(rounds):
        evaluate(compiled(version), facts)
    cached = (time.perf_counter() - began) / rounds
    began = time.perf_counter()
    for _ in range(rounds // 10):
        evaluate(compile_version(version), facts)
    fresh = (time.perf_counter() - began) / (rounds // 10)
    return {"rules": len(version.rules), "cached_us": cached * 1e6, "compiled_each_us":
            fresh * 1e6}


async def background_promotions(services: Services, policy: PolicyService,
                                count: int) -> float:
    """`count` promotions recorded before the measured ones (an insight's baseline is found
    among them); returns promotions per second."""
    version = PolicyVersion("gate", "bg", (rule("signed"), rule("vulns_high", 5)))
    await policy.submit_version(AUTHOR, None, version)
    await declare(policy, version, "bg")
    images = {digest("bg", k): {"signed": True, "vulns_high": k % 8} for k in range(50)}
    await record(services, 999_999, images)
    keys = list(images)
    began = time.perf_counter()
    for k in range(count):
        await policy.promote(AUTHOR, None, keys[k % 50], "staging", "bg", f"bg-{k}")
    return count / (time.perf_counter() - began)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with embedded_database(workdir, args.db_heap) as target:
        settings = target.settings().model_copy(update={"data_dir": workdir,
                                                        "policy_soak_s": 0.0})
        services = Services.open(settings)
        try:
            await migrate(services.executor)
            rate = await background_promotions(services, services.policy, args.background)
            cases = [case(rng, n) for n in range(args.cases)]
            explained, timings = await run_cases(services, services.policy, cases)
            drifts = await run_drifts(services, services.policy, services.proposals, rng,
                                      args.drifts)
        finally:
            await services.close()
    timings.sort()
    return {"promotions_per_s": rate, "insight_p50_ms": percentile(timings, 50) * 1000,
            "insight_p95_ms": percentile(timings, 95) * 1000, **explained, **drifts,
            **hint_accuracy(rng), "evaluation": evaluation_cost()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=600, help="failed promotions, known cause")
    parser.add_argument("--drifts", type=int, default=240, help="drifts of known risk")
    parser.add_argument("--background", type=int, default=10_000,
                        help="promotions recorded before the measured ones")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--db-heap", help=DB_HEAP_HELP)
    args = parser.parse_args()
    result = run_in_workdir("lac", run, args)
    ev = result["evaluation"]
    print_table(["figure", "value", "goal"], [
        ["failed promotions explained", f"{result['explained']:.1%}", ">= 80 %"],
        ["cause classified right", f"{result['cause_right']:.1%}", ">= 95 %"],
        ["top mitigation makes it pass", f"{result['top_mitigation_fixes']:.1%}", "reported"],
        ["drift risk classified right", f"{result['risk_right']:.1%}", ""],
        ["low-risk drift cleared", f"{result['low_risk_cleared']:.1%}", ">= 70 %"],
        ["regressions after merges", result["regressions"], "0"],
        ["misspelt facts named right", f"{result['named_right']:.1%}", ""],
        ["promotions/s (one client, with DB)", f"{result['promotions_per_s']:.0f}", ""],
        ["denied promotion with insight p50/p95 ms",
         f"{result['insight_p50_ms']:.1f} / {result['insight_p95_ms']:.1f}", ""],
        [f"evaluation, {ev['rules']} rules: cached / compiled each time µs",
         f"{ev['cached_us']:.0f} / {ev['compiled_each_us']:.0f}", ""],
    ])
    print(f"JSON: {write_json('lac', {'args': vars(args), 'result': result})}")


if __name__ == "__main__":
    main()
