"""Weekly tenant health rollups, with their action items and readership."""

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from trustfabric.domain.rollups.digest import csv_rows, markdown
from trustfabric.domain.rollups.service import Rollup
from trustfabric.schema.described import described


@strawberry.type(description="Something the week's figures ask someone to do.")
class RollupActionItem:
    id: str = described("The item's id (completeRollupAction).")
    text: str = described("What to do.")
    carried: bool = described("Carried, still open, from an earlier week.")
    done: bool = described("Marked done.")


@strawberry.type(name="Rollup", description="A tenant's week, generated once and immutable; "
                                            "opening it counts as reading it.")
class RollupType:
    tenant: str = described("The tenant.")
    week: str = described("The ISO week, e.g. 2026-W49.")
    hash: str = described("sha256 of its content: the digest's identity.")
    generated_at: datetime = described("When it was made.")
    kpis: JSON = described("Promotion pass rate and blocks, PSI proofs issued and failed, PSI "
                        "demand served, anomalies paged, suppressed and deduplicated.")
    top_anomalies: JSON = described("The week's most severe paged anomalies.")
    action_items: list[RollupActionItem] = described("What to do, carried items first.")
    readers: int = described("Distinct tokens of the tenant that opened it.")
    markdown: str = described("The digest as Markdown, for mail or chat.")
    csv: str = described("The figures as CSV.")
    json: JSON = described("The whole content as JSON.")

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
    tenant: str = described("The tenant.")
    read: bool = described("Opened by at least one of the tenant's tokens.")
