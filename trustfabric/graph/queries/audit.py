from trustfabric.graph.cypher import Cypher

# Audit events are kept in batches (decision 0027): one AuditBatch node holds one tenant's
# events of one statement, in parallel lists, under the batch's key; an event's key is its
# batch's and its place in it. Only batches are indexed, so the indexes grow by a batch
# where they grew by two keys an event. Events carry ids, hashes, sizes and decisions only:
# never a selector or a payload.
#
# WRITE is the tail of a statement that has collected its `audits` (each with its `batch`
# and `key`, from `graph.audit.filed`) and is given the batches' heads as `$auditBatches`:
# a statement that writes some of its rows' events (a job created, a lease still held)
# writes just those, and no batch for a tenant whose events all fell out.
WRITE = """
    FOREACH (b IN $auditBatches |
      FOREACH (events IN [found IN [[e IN audits WHERE e.batch = b.key]]
                          WHERE size(found) > 0] |
        CREATE (:AuditBatch {key: b.key, tenantKey: b.tenantKey, tenant: b.tenant,
                             ids: [e IN events | e.id], keys: [e IN events | e.key],
                             ats: [e IN events | e.at], actors: [e IN events | e.actor],
                             actions: [e IN events | e.action],
                             subjects: [e IN events | e.subject],
                             outcomes: [e IN events | e.outcome],
                             details: [e IN events | e.details]})))
"""

RECORD = Cypher(
    "audit.record",
    """
    WITH $audits AS audits
    """ + WRITE + """
    RETURN size(audits) AS n
    """,
)

# A page's events, from the batches a MATCH and WITH found as `a`: those after the cursor's
# event, in key order.
_PAGE_EVENTS = """
    UNWIND range(0, size(a.keys) - 1) AS i
    WITH a, i WHERE a.keys[i] > $after AND ($action IS NULL OR a.actions[i] = $action)
    RETURN a.keys[i] AS key,
           {id: a.ids[i], key: a.keys[i], at: a.ats[i], tenant: a.tenant, actor: a.actors[i],
            action: a.actions[i], subject: a.subjects[i], outcome: a.outcomes[i],
            details: a.details[i]} AS event
    ORDER BY key
    LIMIT $limit
"""

# A page is two reads: the first `$batches` from the cursor's batch on bound the range
# (decision 0010); each batch after the cursor's holds an event of the page. One tenant's
# page reads the tenant-and-key index (`tenantKey`), and compares the tenant as well, so
# the range never decides whose events are shown; every tenant's page (operators only)
# reads the index of keys. The filters come after a WITH, or the database reads every
# batch instead of the index.
TENANT_PAGE_END = Cypher(
    "audit.tenant_page_end",
    """
    MATCH (a:AuditBatch)
    WHERE a.tenantKey >= $start AND a.tenantKey < $below
    WITH a WHERE a.tenant = $tenant AND ($action IS NULL OR $action IN a.actions)
    WITH a LIMIT $batches
    RETURN max(a.tenantKey) AS last, count(a) AS found
    """,
)

TENANT_PAGE = Cypher(
    "audit.tenant_page",
    """
    MATCH (a:AuditBatch)
    WHERE a.tenantKey >= $start AND a.tenantKey <= $last
    WITH a WHERE a.tenant = $tenant
    """ + _PAGE_EVENTS,
)

PAGE_END = Cypher(
    "audit.page_end",
    """
    MATCH (a:AuditBatch)
    WHERE a.key >= $start AND a.key < $below
    WITH a WHERE $action IS NULL OR $action IN a.actions
    WITH a LIMIT $batches
    RETURN max(a.key) AS last, count(a) AS found
    """,
)

PAGE = Cypher(
    "audit.page",
    """
    MATCH (a:AuditBatch)
    WHERE a.key >= $start AND a.key <= $last
    WITH a
    """ + _PAGE_EVENTS,
)
