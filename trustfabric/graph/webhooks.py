"""Webhook endpoints and their deliveries."""

import contextlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from trustfabric.domain.audit import now_iso
from trustfabric.domain.events.cursor import EventCursor
from trustfabric.domain.events.records import PSI_JOB, JobEvent
from trustfabric.domain.sealing import SEALED, SecretBox
from trustfabric.domain.webhooks import DEACTIVATED, Delivery, DueDelivery, Endpoint
from trustfabric.errors import BadUserInput, Contended, NotFound
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.job_events import JobEventRepository, event_row
from trustfabric.graph.queries import webhooks as q


class WebhookRepository:
    def __init__(self, executor: GraphExecutor, events: JobEventRepository,
                 max_per_tenant: int, box: SecretBox) -> None:
        self._executor = executor
        self._events = events
        self._max_per_tenant = max_per_tenant
        self._box = box  # signing secrets are stored sealed, never in clear

    async def register(self, tenant: str, url: str) -> tuple[Endpoint, str]:
        """(the endpoint, its signing secret: shown once to the caller)."""
        secret, endpoint_id = "whsec_" + secrets.token_urlsafe(32), "wh_" + secrets.token_hex(8)
        rows = await self._executor.write(q.REGISTER, id=endpoint_id, tenant=tenant, url=url,
                                          secret=self._box.seal(secret, endpoint_id),
                                          now=now_iso(), max=self._max_per_tenant)
        if not rows:
            raise BadUserInput(f"a tenant may have {self._max_per_tenant} webhooks at most: "
                               "delete one first")
        return endpoint(rows[0]["endpoint"]), secret

    async def endpoints(self, tenant: str | None) -> list[Endpoint]:
        return [endpoint(row["endpoint"])
                for row in await self._executor.read(q.ENDPOINTS, tenant=tenant)]

    async def deactivate(self, endpoint_id: str, tenant: str | None) -> None:
        """Stops its deliveries too: those due and its dead letters are cancelled with it
        (one being sent may still arrive)."""
        async def work(tx: Tx) -> bool:
            if not await tx.run(q.DEACTIVATE, id=endpoint_id, tenant=tenant):
                return False
            await tx.run(q.CANCEL_DUE, endpointId=endpoint_id, reason=DEACTIVATED)
            await tx.run(q.CANCEL_DEAD, endpointId=endpoint_id, reason=DEACTIVATED)
            return True

        if not await self._executor.write_tx(work):
            raise NotFound(f"webhook {endpoint_id}")

    async def fanned_out_until(self) -> str | None:
        """Job events before this time have become deliveries (None: none ever did)."""
        cursor = await self._cursor()
        return min(cursor.after, cursor.recheck or cursor.after) if cursor else None

    async def fan_out(self, limit: int = 20, pages: int = 10) -> int | None:
        """Turns job events after the stored cursor into deliveries, up to `pages` pages of
        `limit` batches of them (each page one transaction); returns how many events, or
        None when no endpoint listens."""
        tenants = sorted({listening.tenant for listening in await self.endpoints(None)})
        if not tenants:  # nothing to read, and nothing owed to later endpoints
            await self._set_cursor(EventCursor.at(datetime.now(UTC)))
            return None
        cursor = await self._cursor() or EventCursor.at(datetime.now(UTC))
        fanned = 0
        for _ in range(pages):
            read_at = datetime.now(UTC)
            page = await self._events.events_after(cursor.after, limit, tenants=tenants)
            if page.events:
                try:
                    await self._deliveries(page.events)
                except Contended:
                    # other processes fanning out the same page outlasted the retries: one of
                    # them writes it, or the next round reads it again, since the stored
                    # cursor stays where they leave it (this round would fail otherwise, and
                    # set nothing either)
                    return fanned
            cursor.advance(read_at, page)
            fanned += len(page.events)
            if page.until is None:
                break
        await self._set_cursor(cursor)
        return fanned

    async def _deliveries(self, events: list[JobEvent]) -> None:
        """One delivery per event and endpoint. Two processes creating the same one at the
        same moment: the later is refused by the unique delivery id, not merged into it
        (ArcadeDB), and finds it made when it writes the page again."""
        rows = [event_row(event) for event in events]
        try:
            await self._executor.write(q.FAN_OUT, events=rows, now=now_iso())
        except BadUserInput:  # the id taken meanwhile
            await self._executor.write(q.FAN_OUT, events=rows, now=now_iso())

    async def _cursor(self) -> EventCursor | None:
        rows = await self._executor.read(q.CURSOR)
        return EventCursor(rows[0]["at"], rows[0]["recheck"]) if rows else None

    async def _set_cursor(self, cursor: EventCursor) -> None:
        # refused for other processes setting it at the same moment: they set about the same,
        # and what lies between is read again next round (deliveries are made once)
        with contextlib.suppress(Contended):
            await self._executor.write(q.SET_CURSOR, at=cursor.after, recheck=cursor.recheck)

    async def claim_due(self, lease_until: str, limit: int, busy: Iterable[str] = ()
                        ) -> list[DueDelivery]:
        """Due deliveries, oldest event first, but none of the `busy` endpoints'."""
        rows = await self._executor.write(q.CLAIM_DUE, now=now_iso(), leaseUntil=lease_until,
                                          limit=limit, busy=list(busy))
        return [DueDelivery(delivery(row["delivery"]), row["url"],
                            self._box.open(row["secret"], row["delivery"]["endpointId"]),
                            row["active"])
                for row in rows]

    async def seal_stored_secrets(self) -> int:
        """Seals the secrets earlier versions stored in clear (they are read either way);
        run on start by `serve` and `migrate`. How many it sealed."""
        rows = await self._executor.read(q.SECRETS_IN_CLEAR, sealed=SEALED)
        sealed = [{"id": row["id"], "secret": self._box.seal(row["secret"], row["id"])}
                  for row in rows]
        if sealed:
            await self._executor.write(q.SEAL_SECRETS, endpoints=sealed, sealed=SEALED)
        return len(sealed)

    async def extend_leases(self, delivery_ids: list[str], lease_until: str) -> None:
        await self._executor.write(q.EXTEND_LEASES, ids=delivery_ids, until=lease_until)

    async def retry_later(self, delivery_id: str, attempts: int, at: str, error: str) -> None:
        await self._executor.write(q.RETRY_LATER, id=delivery_id, attempts=attempts,
                                   nextAttemptAt=at, error=error, now=now_iso())

    async def settle(self, delivery_id: str, status: str, attempts: int,
                     error: str | None) -> None:
        """DELIVERED, DEAD until replayed, or CANCELLED: no longer due."""
        await self._executor.write(q.SETTLE, id=delivery_id, status=status, attempts=attempts,
                                   error=error, now=now_iso())

    async def settled(self, tenant: str | None, status: str, limit: int = 100
                      ) -> list[Delivery]:
        """Deliveries DEAD (the dead letters) or CANCELLED, oldest event first."""
        return [delivery(row["delivery"]) for row in await self._executor.read(
            q.SETTLED, tenant=tenant, status=status, limit=limit)]

    async def drop_settled(self, before: str, limit: int = 1000) -> int:
        """Deletes up to `limit` delivered or cancelled deliveries of events before `before`;
        returns how many (0: none is left that old)."""
        rows = await self._executor.read(q.SETTLED_BEFORE, before=before, limit=limit)
        if not rows:
            return 0
        dropped = await self._executor.write(q.DROP, ids=[row["id"] for row in rows])
        return int(dropped[0]["dropped"])

    async def replay(self, ids: list[str]) -> list[str]:
        return [row["id"] for row in await self._executor.write(q.REPLAY, ids=ids, now=now_iso())]


# Endpoints and deliveries from rows, by property name.
def endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(id=row["id"], tenant=row["tenant"], url=row["url"],
                    created_at=row["createdAt"])


def delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(id=row["id"], endpoint_id=row["endpointId"], tenant=row["tenant"],
                    event_id=row["eventId"], job_id=row["jobId"], job_status=row["jobStatus"],
                    event_at=row["eventAt"], status=row["status"], attempts=row["attempts"],
                    next_attempt_at=row.get("nextAttemptAt"),
                    last_attempt_at=row.get("lastAttemptAt"), last_error=row.get("lastError"),
                    topic=row.get("topic") or PSI_JOB)
