"""A tenant's week in one immutable digest: promotions and what blocked them, PSI proofs,
how much of its PSI demand was served, anomalies paged against suppressed, the top
anomalies, and action items (carried until marked done). Rendered as JSON, CSV and
Markdown from the same body, which its hash names."""

import base64
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from trustfabric.domain.provenance.lineage import to_csv
from trustfabric.errors import BadUserInput

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def week_range(week: str) -> tuple[str, str]:
    """An ISO week (`2026-W49`) as [start, end) timestamps, Monday 00:00 UTC."""
    found = _WEEK.fullmatch(week)
    if found is None:
        raise BadUserInput("week: an ISO week such as 2026-W49")
    try:
        monday = date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        raise BadUserInput(f"week: {week} does not exist") from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start.isoformat(timespec="microseconds"), (start + timedelta(days=7)).isoformat(
        timespec="microseconds")


def week_of(moment: datetime) -> str:
    year, number, _ = moment.isocalendar()
    return f"{year}-W{number:02d}"


@dataclass
class WeekFigures:
    """What storage read of the tenant's week (`graph.rollups`)."""

    promotions_allowed: int = 0
    promotions_denied: int = 0
    blocking_rules: Counter[str] = field(default_factory=Counter)
    proofs: Counter[str] = field(default_factory=Counter)  # PSI jobs finished, by status
    requests_accepted: int = 0
    requests_shed: int = 0  # refused as OVERLOADED: the tenant's fair share was exceeded
    anomalies: Counter[str] = field(default_factory=Counter)  # by paging decision
    top_anomalies: list[dict[str, Any]] = field(default_factory=list)


def body(tenant: str, week: str, figures: WeekFigures,
         carried: list[dict[str, Any]]) -> dict[str, Any]:
    """The digest's content: KPIs, the top anomalies, and action items (those carried from
    the last digest first)."""
    promotions = figures.promotions_allowed + figures.promotions_denied
    demand = figures.requests_accepted + figures.requests_shed
    paged = figures.anomalies.get("PAGE", 0)
    silenced = figures.anomalies.get("SUPPRESSED", 0) + figures.anomalies.get("DEDUPLICATED", 0)
    items = [dict(item, carried=True) for item in carried]
    for rule, count in figures.blocking_rules.most_common(3):
        items.append({"id": f"{week}:rule:{rule}", "text": f"Policy rule `{rule}` denied "
                      f"{count} promotion(s): read the insights and fix the images or the rule",
                      "carried": False})
    if figures.proofs.get("FAILED", 0):
        items.append({"id": f"{week}:psi-failed", "text": f"{figures.proofs['FAILED']} PSI "
                      "job(s) failed: read their error codes", "carried": False})
    for anomaly in figures.top_anomalies[:3]:
        if anomaly["severity"] in ("CRITICAL", "HIGH"):
            items.append({"id": f"{week}:anomaly:{anomaly['anomalyId']}",
                          "text": f"Trace {anomaly['severity'].lower()} anomaly "
                                  f"`{anomaly['anomalyId']}` to its root", "carried": False})
    return {
        "tenant": tenant, "week": week,
        "kpis": {
            "promotions": promotions,
            "promotionPassRate": figures.promotions_allowed / promotions if promotions else None,
            "policyBlocks": figures.promotions_denied,
            "blockingRules": dict(figures.blocking_rules.most_common(5)),
            "proofsIssued": figures.proofs.get("DONE", 0),
            "proofsFailed": figures.proofs.get("FAILED", 0),
            "psiDemandServed": figures.requests_accepted / demand if demand else None,
            "anomaliesPaged": paged,
            "anomaliesSuppressed": figures.anomalies.get("SUPPRESSED", 0),
            "anomaliesDeduplicated": figures.anomalies.get("DEDUPLICATED", 0),
            "pagesAvoided": silenced / (paged + silenced) if paged + silenced else None,
        },
        "topAnomalies": [{**a, "lineage": explorer_link(a["key"])}
                         for a in figures.top_anomalies[:5]],
        "actionItems": items,
    }


def explorer_link(key: str) -> str:
    """Where the explorer draws an anomaly's lineage: its global id is the key's base64
    (Relay's `Kind:id`, the id being `tenant:recorded-id`)."""
    return "/explorer#/anomaly/" + base64.b64encode(key.encode()).decode()


def content_hash(content: dict[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def markdown(content: dict[str, Any], done: set[str]) -> str:
    k = content["kpis"]
    lines = [f"# {content['tenant']}: week {content['week']}", "",
             "| figure | value |", "|---|---|",
             f"| promotions (pass rate) | {k['promotions']} ({_percent(k['promotionPassRate'])}) |",
             f"| policy blocks | {k['policyBlocks']} |",
             f"| PSI proofs issued / failed | {k['proofsIssued']} / {k['proofsFailed']} |",
             f"| PSI demand served (fair share) | {_percent(k['psiDemandServed'])} |",
             f"| anomalies paged / suppressed / deduplicated | {k['anomaliesPaged']} / "
             f"{k['anomaliesSuppressed']} / {k['anomaliesDeduplicated']} |", ""]
    if content["topAnomalies"]:
        lines += ["## Top anomalies", ""] + [
            f"- `{a['anomalyId']}` {a['severity']} {a['kind']}: {a.get('summary') or ''} "
            f"([lineage]({a['lineage']}))" for a in content["topAnomalies"]] + [""]
    lines += ["## Action items", ""] + [
        f"- [{'x' if item['id'] in done else ' '}] {item['text']}"
        + (" (carried)" if item["carried"] else "") for item in content["actionItems"]]
    return "\n".join(lines) + "\n"


def csv_rows(content: dict[str, Any]) -> str:
    return to_csv(["tenant", "week", "figure", "value"],
                  [[content["tenant"], content["week"], name, value]
                   for name, value in content["kpis"].items() if not isinstance(value, dict)])
