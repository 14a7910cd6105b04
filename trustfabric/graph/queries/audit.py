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

# A page reads an index of keys from the cursor on, in two steps, because ArcadeDB orders a
# range by reading all of it: a page of 50 took 841 ms for a tenant with 200,000 events.
# First `$limit` of the events after the cursor, as the index yields them (with no ORDER BY
# the read stops there: 6 ms). Whichever they are, the first `$limit` in key order are at
# or below the largest of them, so the page is then read in order from that range alone.
# One tenant's page reads the tenant-and-key index (`tenantKey`), and compares the tenant as
# well, so the range never decides whose events are shown; every tenant's page (operators
# only) reads the index of keys. The filters come after a WITH, or the database reads every
# event instead of the index (135 ms against 4 ms).
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
