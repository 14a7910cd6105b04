"""Partner datasets: versions registered with their audit events, and the setups (encoded
datasets) that clients fetch once per version and key."""

import asyncio
from dataclasses import dataclass, replace
from typing import Protocol

from async_lru import alru_cache

from trustfabric.domain.audit import AuditEvent, audit_event
from trustfabric.domain.auth import Caller
from trustfabric.domain.ids import IDENT, IDENT_RULE
from trustfabric.domain.psi import protocol as psi
from trustfabric.domain.psi.records import DatasetRecord, VersionRecord
from trustfabric.errors import BadUserInput, Forbidden


class DatasetStore(Protocol):
    """What datasets need of storage (`graph.datasets.DatasetRepository`)."""

    async def get(self, dataset_id: str) -> DatasetRecord: ...

    async def add_version(self, dataset_id: str, items: list[str], content_hash: str,
                          audit: list[AuditEvent], new: tuple[str, str] | None = None,
                          ) -> tuple[DatasetRecord, bool]: ...

    async def items(self, version_key: str) -> list[str]: ...

    async def current_versions(self) -> list[VersionRecord]: ...

    async def version(self, key: str) -> VersionRecord: ...


@dataclass(frozen=True)
class Setup:
    dataset: DatasetRecord
    setup_id: str  # names dataset version, server key and size bound; an ETag for clients
    message: bytes
    max_client_items: int


class SetupCache:
    """Setups per version, key and size bound, built once and pre-seeded (decision 0002)."""

    def __init__(self, datasets: DatasetStore, key: psi.ServerKey, fpr: float) -> None:
        self._datasets = datasets
        self._key = key
        self._fpr = fpr
        self._setups: dict[str, bytes] = {}
        self._building: dict[str, asyncio.Task[bytes]] = {}

    def setup_id(self, dataset: DatasetRecord, max_items: int) -> str:
        return f"{dataset.version_key}|{dataset.hash}|{self._key.key_id}|{max_items}"

    async def get(self, dataset: DatasetRecord, max_items: int) -> Setup:
        if dataset.version == 0:
            raise BadUserInput(f"dataset {dataset.id} has no version yet")
        setup_id = self.setup_id(dataset, max_items)
        if setup_id not in self._setups:
            if setup_id not in self._building:  # one build, however many ask at once
                self._building[setup_id] = asyncio.create_task(self._build(dataset, max_items))
            try:
                # shielded: one caller giving up must not cancel the build for the others
                self._setups[setup_id] = await asyncio.shield(self._building[setup_id])
            finally:
                self._building.pop(setup_id, None)
        return Setup(dataset, setup_id, self._setups[setup_id], max_items)

    async def _build(self, dataset: DatasetRecord, max_items: int) -> bytes:
        items = await self._datasets.items(dataset.version_key)
        return await asyncio.to_thread(psi.create_setup, self._key, items, max_items, self._fpr)

    async def for_version(self, version: VersionRecord, max_items: int) -> Setup:
        """The setup of one particular version: what a job's response must be read with."""
        dataset = await self._datasets.get(version.dataset_id)
        return await self.get(replace(dataset, version=version.version, hash=version.hash,
                                      size=version.size, uploaded_at=version.uploaded_at),
                              max_items)

    async def preseed(self, max_items: int) -> int:
        versions = await self._datasets.current_versions()
        for version in versions:
            await self.get(await self._datasets.get(version.dataset_id), max_items)
        return len(versions)


class DatasetService:
    """Registers datasets and their versions (partners and operators), each with its
    audit events in the same transaction, and serves dataset metadata to PSI requests."""

    def __init__(self, store: DatasetStore, max_items: int) -> None:
        self._store = store
        self._max_items = max_items
        # Dataset metadata read per request is the hottest read: trusted for a second, one
        # read for all who ask meanwhile, and dropped here at once when this process
        # uploads a version.
        self.current = alru_cache(maxsize=10_000, ttl=1.0)(store.get)

    async def register(self, caller: Caller, partner: str | None, name: str,
                       items: list[str]) -> DatasetRecord:
        caller.require_write()
        partner = caller.tenant_for(partner)
        if not IDENT.fullmatch(name):
            raise BadUserInput(f"name: {IDENT_RULE}")
        dataset_id = f"{partner}/{name}"
        unique, content_hash = self._checked_items(items)
        dataset, _ = await self._store.add_version(
            dataset_id, unique, content_hash, new=(partner, name), audit=[
                audit_event(tenant=partner, actor=caller.token_id, action="dataset.register",
                            subject=dataset_id, outcome="created"),
                _version_audit(caller, partner, dataset_id, content_hash, len(unique)),
            ])
        return dataset

    async def upload_version(self, caller: Caller, dataset_id: str,
                             items: list[str]) -> DatasetRecord:
        caller.require_write()
        dataset = await self._store.get(dataset_id)
        if caller.tenant_for(dataset.partner) != dataset.partner:
            raise Forbidden("only the partner or an operator may upload versions")
        unique, content_hash = self._checked_items(items)
        updated, _ = await self._store.add_version(dataset_id, unique, content_hash, audit=[
            _version_audit(caller, dataset.partner, dataset_id, content_hash, len(unique))])
        self.current.cache_invalidate(dataset_id)
        return updated

    def _checked_items(self, items: list[str]) -> tuple[list[str], str]:
        unique = sorted(set(items))
        if not 1 <= len(unique) <= self._max_items:
            raise BadUserInput(f"a dataset holds 1 to {self._max_items} distinct items")
        return unique, psi.dataset_hash(unique)


def _version_audit(caller: Caller, partner: str, dataset_id: str, content_hash: str,
                   size: int) -> AuditEvent:
    return audit_event(tenant=partner, actor=caller.token_id, action="dataset.version",
                       subject=dataset_id, outcome="created", datasetHash=content_hash,
                       size=size)
