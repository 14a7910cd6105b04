"""Weekly tenant health rollups, with their action items and readership."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from trustfabric.domain.rollups.digest import csv_rows, markdown
from trustfabric.domain.rollups.service import Rollup


def _field(description: str) -> Any:
    return strawberry.field(description=description)


@strawberry.type(description="Something the week's figures ask someone to do.")
class RollupActionItem:
    id: str = _field("The item's id (completeRollupAction).")
    text: str = _field("What to do.")
    carried: bool = _field("Carried, still open, from an earlier week.")
    done: bool = _field("Marked done.")


@strawberry.type(name="Rollup", description="A tenant's week, generated once and immutable; "
                                            "opening it counts as reading it.")
class RollupType:
    tenant: str = _field("The tenant.")
    week: str = _field("The ISO week, e.g. 2026-W49.")
    hash: str = _field("sha256 of its content: the digest's identity.")
    generated_at: datetime = _field("When it was made.")
    kpis: JSON = _field("Promotion pass rate and blocks, PSI proofs issued and failed, PSI "
                        "demand served, anomalies paged, suppressed and deduplicated.")
    top_anomalies: JSON = _field("The week's most severe paged anomalies.")
    action_items: list[RollupActionItem] = _field("What to do, carried items first.")
    readers: int = _field("Distinct tokens of the tenant that opened it.")
    markdown: str = _field("The digest as Markdown, for mail or chat.")
    csv: str = _field("The figures as CSV.")
    json: JSON = _field("The whole content as JSON.")

    @classmethod
    def from_rollup(cls, r: Rollup) -> "RollupType":
        c = r.content
        return cls(tenant=r.tenant, week=r.week, hash=r.hash,
                   generated_at=datetime.fromisoformat(r.generated_at), kpis=c["kpis"],
                   top_anomalies=c["topAnomalies"],
                   action_items=[RollupActionItem(id=i["id"], text=i["text"],
                                                  carried=i["carried"], done=i["id"] in r.done)
                                 for i in c["actionItems"]],
                   readers=r.readers, markdown=markdown(c, set(r.done)), csv=csv_rows(c),
                   json=JSON(c))


@strawberry.type(description="Whether a tenant's digest of the week was read by its people.")
class RollupReadership:
    tenant: str = _field("The tenant.")
    read: bool = _field("Opened by at least one of the tenant's tokens.")
