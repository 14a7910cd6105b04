"""The one executor against the real database: the conflicts it rides out."""

import asyncio

from trustfabric.graph.cypher import Cypher
from trustfabric.graph.executor import QUERY_ERRORS, QUERY_REFUSALS

MAKE = Cypher("test.probe_make", "CREATE (:ExecutorProbe {key: $key, n: 0})")
BUMP = Cypher("test.probe_bump",
              "MATCH (p:ExecutorProbe {key: $key}) SET p.n = p.n + 1 RETURN p.n AS n")
DROP = Cypher("test.probe_drop", "MATCH (p:ExecutorProbe {key: $key}) DELETE p")


async def test_a_statement_refused_for_a_concurrent_change_is_tried_again(services, tenant):
    """Auto-commit statements racing for one record: ArcadeDB refuses the losers of each
    round (DeadlockDetected), as it refuses a read of a multi-page record rewritten under
    it, which no test can time. Writes through `read` make the race certain (the service
    never sends one): each is tried again until it lands, and lands once."""
    refused, failed = QUERY_REFUSALS.labels(BUMP.name), QUERY_ERRORS.labels(BUMP.name)
    before, failures = refused._value.get(), failed._value.get()
    await services.executor.write(MAKE, key=tenant)
    try:
        rows = await asyncio.gather(*(services.executor.read(BUMP, key=tenant)
                                      for _ in range(30)))
    finally:
        await services.executor.write(DROP, key=tenant)
    assert sorted(row["n"] for [row] in rows) == list(range(1, 31))
    assert refused._value.get() > before  # the race happened: some were refused at first
    assert failed._value.get() == failures  # and none of it counts as a failed query
