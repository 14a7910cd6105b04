"""Job events, read in the batches that wrote them, and retired past their retention."""

from trustfabric.graph.cypher import Cypher

# Readers skip the events their own process wrote (`origin`): it told its subscribers.
_NOT_MINE = "($origin IS NULL OR coalesce(b.origin, '') <> $origin)"


_BATCH = "b {.*, origin: null} AS batch"


# Unordered on purpose: ORDER BY makes ArcadeDB sort every batch instead of using the
# index on `at` (8 ms against 1 ms at 20,000 events, growing). The caller sorts; a full
# page is read again ordered, so nothing is skipped.
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


# Job events are an outbox: subscribers and the webhook fan-out read them within seconds.
# Old ones only grow the index every poll walks, so they are dropped a slice of time at a
# time, from the oldest. Both statements keep to the index on `at`: with `WITH e LIMIT n`
# ArcadeDB walked every event even when none was old (50 ms at 200,000, 600 ms at 2
# million), and the slice bounds the transaction instead.
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
