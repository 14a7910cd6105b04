"""Job events, read in the batches that wrote them, and retired past their retention."""

from trustfabric.graph.cypher import Cypher

# Readers skip the events their own process wrote (`origin`): it told its subscribers.
_NOT_MINE = "($origin IS NULL OR coalesce(b.origin, '') <> $origin)"


_BATCH = "b {.*, origin: null} AS batch"


# Unordered, or ArcadeDB leaves the index; the caller sorts (decision 0018).
# A full page is read again ordered, so nothing is skipped.
EVENTS_AFTER = Cypher(
    "psi.events_after",
    f"MATCH (b:JobEventBatch) WHERE b.at > $after AND {_NOT_MINE} RETURN {_BATCH} LIMIT $limit",
)


EVENTS_AFTER_ORDERED = Cypher(
    "psi.events_after_ordered",
    f"""
    MATCH (b:JobEventBatch) WHERE b.at > $after AND {_NOT_MINE}
    RETURN {_BATCH} ORDER BY b.at LIMIT $limit
    """,
)


# The batches at a full page's end: one claim writes a batch per tenant at the same time,
# so more than a page of them may share it, and the next page starts after it.
EVENTS_AT = Cypher(
    "psi.events_at", f"MATCH (b:JobEventBatch) WHERE b.at = $at AND {_NOT_MINE} RETURN {_BATCH}",
)


# An outbox: dropped a time slice at a time, on the index on `at` (decision 0011).
OLDEST_EVENT = Cypher(
    "psi.oldest_event",
    "MATCH (b:JobEventBatch) WHERE b.at < $before RETURN b.at AS at LIMIT 1",
)


DROP_EVENTS = Cypher(
    "psi.drop_events",
    """
    MATCH (b:JobEventBatch) WHERE b.at >= $from AND b.at < $before
    DELETE b
    RETURN count(*) AS dropped
    """,
)


# A change's events, written as one batch in the change's own transaction (PSI jobs' are
# written by their statements in queries/psi.py, the same way).
WRITE_BATCH = Cypher(
    "events.write_batch",
    """
    CREATE (b:JobEventBatch {at: $at, origin: $origin, ids: $ids, ats: $ats,
                             tenants: $tenants, jobIds: $subjects, statuses: $statuses,
                             topics: $topics})
    RETURN b.at AS at
    """,
)
