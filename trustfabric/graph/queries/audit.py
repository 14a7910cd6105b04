from trustfabric.graph.cypher import Cypher

# Events carry ids, hashes, sizes and decisions only: never a selector or a payload.
RECORD = Cypher(
    "audit.record",
    """
    UNWIND $events AS e
    CREATE (a:AuditEvent)
    SET a = e
    RETURN count(a) AS n
    """,
)

PAGE = Cypher(
    "audit.page",
    """
    MATCH (a:AuditEvent)
    WHERE ($tenant IS NULL OR a.tenant = $tenant) AND a.key > $after
      AND ($action IS NULL OR a.action = $action)
    RETURN a {.*} AS event
    ORDER BY a.key
    LIMIT $limit
    """,
)
