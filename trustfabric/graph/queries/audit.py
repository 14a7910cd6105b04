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

# named fields, not `.*`: the index key `tenantKey` is no part of an event
_EVENT = "a {.id, .key, .at, .tenant, .actor, .action, .subject, .outcome, .details} AS event"

# A page is two reads: the first `$limit` after the cursor bound the range (decision 0010).
# One tenant's page reads the tenant-and-key index (`tenantKey`), and compares the tenant as
# well, so the range never decides whose events are shown; every tenant's page (operators
# only) reads the index of keys. The filters come after a WITH, or the database reads every
# event instead of the index.
TENANT_PAGE_END = Cypher(
    "audit.tenant_page_end",
    """
    MATCH (a:AuditEvent)
    WHERE a.tenantKey > $above AND a.tenantKey < $below
    WITH a WHERE a.tenant = $tenant AND ($action IS NULL OR a.action = $action)
    WITH a LIMIT $limit
    RETURN max(a.tenantKey) AS last, count(a) AS found
    """,
)

TENANT_PAGE = Cypher(
    "audit.tenant_page",
    """
    MATCH (a:AuditEvent)
    WHERE a.tenantKey > $above AND a.tenantKey <= $last
    WITH a WHERE a.tenant = $tenant AND ($action IS NULL OR a.action = $action)
    RETURN """ + _EVENT + """
    ORDER BY a.tenantKey
    LIMIT $limit
    """,
)

PAGE_END = Cypher(
    "audit.page_end",
    """
    MATCH (a:AuditEvent)
    WHERE a.key > $above AND a.key < $below
    WITH a WHERE $action IS NULL OR a.action = $action
    WITH a LIMIT $limit
    RETURN max(a.key) AS last, count(a) AS found
    """,
)

PAGE = Cypher(
    "audit.page",
    """
    MATCH (a:AuditEvent)
    WHERE a.key > $above AND a.key <= $last
    WITH a WHERE $action IS NULL OR a.action = $action
    RETURN """ + _EVENT + """
    ORDER BY a.key
    LIMIT $limit
    """,
)
