"""Partner datasets: versions written with their audit events, items kept apart."""

from typing import Any

from trustfabric.domain.audit import now_iso
from trustfabric.domain.psi.records import DatasetRecord, VersionRecord
from trustfabric.errors import NotFound
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import datasets as q


class DatasetRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def get(self, dataset_id: str) -> DatasetRecord:
        rows = await self._executor.read(q.DATASET, id=dataset_id)
        if not rows:
            raise NotFound(f"dataset {dataset_id}")
        return DatasetRecord.from_row(rows[0])

    async def of_partner(self, partner: str | None, limit: int = 500) -> list[DatasetRecord]:
        rows = await self._executor.read(q.DATASETS, partner=partner, limit=limit)
        return [DatasetRecord.from_row(row) for row in rows]

    async def add_version(self, dataset_id: str, items: list[str], content_hash: str,
                          audit: list[dict[str, Any]], new: tuple[str, str] | None = None,
                          ) -> tuple[DatasetRecord, bool]:
        """A new version unless the content equals the current one: (dataset, created).
        With `new` (partner, name) the dataset itself is registered in the same
        transaction, so a refused registration leaves nothing behind."""

        async def work(tx: Tx) -> tuple[DatasetRecord, bool]:
            if new is not None:
                await tx.run(q.CREATE_DATASET, id=dataset_id, partner=new[0], name=new[1],
                             now=now_iso())
            rows = await tx.run(q.DATASET, id=dataset_id)
            if not rows:
                raise NotFound(f"dataset {dataset_id}")
            current = DatasetRecord.from_row(rows[0])
            if current.hash == content_hash:
                return current, False
            version = current.version + 1
            await tx.run(q.ADD_VERSION, id=dataset_id, key=f"{dataset_id}@{version}",
                         version=version, hash=content_hash, size=len(items), items=items,
                         now=now_iso())
            await AuditRepository.record_in(tx, *audit)
            rows = await tx.run(q.DATASET, id=dataset_id)
            return DatasetRecord.from_row(rows[0]), True

        return await self._executor.write_tx(work)

    async def items(self, version_key: str) -> list[str]:
        rows = await self._executor.read(q.DATASET_ITEMS, key=version_key)
        if not rows:
            raise NotFound(f"dataset version {version_key}")
        return list(rows[0]["items"])

    async def current_versions(self) -> list[VersionRecord]:
        rows = await self._executor.read(q.CURRENT_VERSIONS)
        return [VersionRecord.from_row(row["version"]) for row in rows]

    async def version(self, key: str) -> VersionRecord:
        rows = await self._executor.read(q.VERSION, key=key)
        if not rows:
            raise NotFound(f"dataset version {key}")
        return VersionRecord.from_row(rows[0]["version"])
