"""PSI jobs and their lifecycle, the job events they write, their retirement."""

from trustfabric.graph.cypher import Cypher
from trustfabric.graph.queries import audit

# Every statement that changes jobs' status writes their events as one JobEventBatch: its
# events in parallel lists (a property holds primitives or lists of them), `at` no earlier
# than any of them, so a reader from `since` finds every batch holding an event from then
# on. One node a statement, written by the statement itself (decision 0011); its audit
# events likewise, a batch a tenant (decision 0027).
# Each row brings its `event` and `audit` (null: none) and its `result`, flat maps: in a
# map literal, ArcadeDB returns a nested projection as the node's own map.
_EVENTS = """
    WITH collect(event) AS events, collect(result) AS results, collect(audit) AS audits
    FOREACH (_ IN CASE WHEN size(events) > 0 THEN [1] ELSE [] END |
      CREATE (:JobEventBatch {at: $at, origin: $origin, ids: [e IN events | e.id],
                              ats: [e IN events | e.at], tenants: [e IN events | e.tenant],
                              jobIds: [e IN events | e.jobId],
                              statuses: [e IN events | e.status]}))
    """ + audit.WRITE + """
    WITH results
    UNWIND results AS result
    RETURN result
"""


# The idempotency key is unique per tenant: a second request with it finds the first job,
# and writes no events. A new job gets its entry in the queue, its audit event and its
# QUEUED event. Only a job found is sent back: a new one is what the service just sent, and
# decoding it again runs on the API's event loop, the service's one serial part.
CREATE_JOBS = Cypher(
    "psi.create_jobs",
    """
    UNWIND $rows AS row
    MERGE (j:PsiJob {idemKey: row.idemKey})
      ON CREATE SET j += row.props
    WITH row, j, j.id = row.props.id AS created
    FOREACH (_ IN CASE WHEN created AND j.status = 'QUEUED' THEN [1] ELSE [] END |
      CREATE (:PsiQueueEntry {jobId: j.id, tenant: j.tenant, createdAt: j.createdAt}))
    WITH CASE WHEN created THEN row.event END AS event,
         CASE WHEN created THEN row.audit END AS audit,
         CASE WHEN created THEN {idemKey: row.idemKey, id: j.id}
              ELSE j {.*, request: null} END AS result
    """ + _EVENTS,
)

JOB = Cypher(
    "psi.job",
    """
    MATCH (j:PsiJob {id: $id})
    WHERE $tenant IS NULL OR j.tenant = $tenant
    RETURN j {.*, request: null} AS job
    """,
)

JOBS_BY_IDEMPOTENCY_KEY = Cypher(
    "psi.jobs_by_idempotency_key",
    """
    UNWIND $idemKeys AS idemKey
    MATCH (j:PsiJob {idemKey: idemKey})
    RETURN idemKey, j {.*, request: null} AS job
    """,
)

# A tenant's page reads its range of the page-key index in order (`graph.psi.page_key`:
# newest first) and stops at the page's end, whatever the tenant's jobs number; the tenant
# is compared as well, so the range never decides whose jobs are shown. The filters come
# after a WITH, or the database reads every job instead of the index. A page filtered by
# status first bounds its range to the next `$examine` jobs of the tenant (decision 0028):
# a status few jobs have would otherwise read on through all of them. Both rely on the
# database yielding an index range in key order up to the LIMIT, as the audit pages do
# (ArcadeDB merges its buckets' index cursors in order; decision 0028 says what to check).
JOBS_PAGE_END = Cypher(
    "psi.jobs_page_end",
    """
    MATCH (j:PsiJob)
    WHERE j.pageKey > $start AND j.pageKey <= $last
    WITH j WHERE j.tenant = $tenant
    WITH j LIMIT $examine
    RETURN max(j.pageKey) AS last, count(j) AS examined
    """,
)

JOBS_PAGE = Cypher(
    "psi.jobs_page",
    """
    MATCH (j:PsiJob)
    WHERE j.pageKey > $start AND j.pageKey <= $last
    WITH j WHERE j.tenant = $tenant AND ($status IS NULL OR j.status = $status)
    WITH j LIMIT $limit
    RETURN j {.*, request: null} AS job
    ORDER BY j.pageKey
    """,
)

# A job's queue entry lives until the job finishes, like a message in a work queue: without
# a lease while the job is queued, with its worker's lease while it runs.
# Finding work walks the entries of unfinished jobs, never every job ever run (decision 0009).
QUEUE_DEPTH = Cypher(
    "psi.queue_depth",
    """
    MATCH (q:PsiQueueEntry) WHERE q.leaseOwner IS NULL
    RETURN q.tenant AS tenant, count(*) AS queued
    """,
)

# Claims lease the job's entry (of two claims, one finds it unleased) and start the job.
# Each attempt has its RUNNING event (`PsiJobRepository.claim` names it the same way).
_START = """
    WITH q, j WHERE j.status = 'QUEUED'
    SET q.leaseOwner = $owner, q.leaseUntil = $until,
        j.status = 'RUNNING', j.startedAt = coalesce(j.startedAt, $now),
        j.attempts = coalesce(j.attempts, 0) + 1
    WITH {id: j.id + ':run' + toString(j.attempts), at: $now, tenant: j.tenant, jobId: j.id,
          status: 'RUNNING'} AS event, j {.*} AS result, null AS audit
""" + _EVENTS

# A tenant's oldest queued jobs: the worker asks each backlogged tenant for its fair part.
CLAIM = Cypher(
    "psi.claim",
    """
    MATCH (q:PsiQueueEntry)
    WHERE q.tenant = $tenant AND q.leaseOwner IS NULL
    WITH q ORDER BY q.createdAt LIMIT $limit
    MATCH (j:PsiJob {id: q.jobId})
    """ + _START,
)

# Jobs handed over in memory by the process that accepted them, if nobody took them since.
CLAIM_IDS = Cypher(
    "psi.claim_ids",
    """
    UNWIND $ids AS id
    MATCH (q:PsiQueueEntry {jobId: id})
    WHERE q.leaseOwner IS NULL
    MATCH (j:PsiJob {id: id})
    """ + _START,
)

# Running jobs whose worker stopped renewing its lease (it crashed): taken over as they are.
# Not those the claiming worker is still answering (`busy`).
RECLAIM = Cypher(
    "psi.reclaim",
    """
    MATCH (q:PsiQueueEntry)
    WHERE q.leaseUntil < $now AND NOT q.jobId IN $busy
    MATCH (j:PsiJob {id: q.jobId})
    WHERE j.attempts < $maxAttempts
    WITH q, j ORDER BY q.createdAt LIMIT $limit
    SET q.leaseOwner = $owner, q.leaseUntil = $until, j.attempts = coalesce(j.attempts, 0) + 1
    RETURN j {.*} AS job
    """,
)

# A job that took every worker that tried it down with it is not tried again.
GIVE_UP = Cypher(
    "psi.give_up",
    """
    MATCH (q:PsiQueueEntry)
    WHERE q.leaseUntil < $now
    MATCH (j:PsiJob {id: q.jobId})
    WHERE j.attempts >= $maxAttempts
    DELETE q
    SET j.status = 'FAILED', j.errorCode = 'INTERNAL_SERVER_ERROR',
        j.errorMessage = 'the job failed on every attempt', j.completedAt = $now,
        j.request = null
    WITH {id: $now + ':' + j.id, at: $now, tenant: j.tenant, jobId: j.id,
          status: 'FAILED'} AS event
    WITH event, event AS result, null AS audit
    """ + _EVENTS,
)

# A live worker keeps its batch: long crypto must not let another worker take it over.
RENEW = Cypher(
    "psi.renew",
    """
    UNWIND $ids AS id
    MATCH (q:PsiQueueEntry {jobId: id})
    WHERE q.leaseOwner = $owner
    SET q.leaseUntil = $until
    RETURN count(q) AS renewed
    """,
)

# Completion counts only for the worker holding the lease: a job finishes exactly once, and
# its audit event is written with it or not at all. Its queue entry goes with the lease.
_FINISH = """
    UNWIND $rows AS row
    MATCH (q:PsiQueueEntry {jobId: row.id})
    WHERE q.leaseOwner = $owner
    MATCH (j:PsiJob {id: row.id})
    DELETE q
"""

COMPLETE = Cypher(
    "psi.complete",
    _FINISH + """
    SET j.status = 'DONE', j.responseRef = row.responseRef,
        j.responseCommitment = row.commitment, j.completedAt = row.completedAt,
        j.bundleId = row.bundleId, j.bundleRef = row.bundleRef, j.bundleHash = row.bundleHash,
        j.request = null
    WITH row, {id: row.eventId, at: row.completedAt, tenant: j.tenant, jobId: j.id,
               status: 'DONE'} AS event
    WITH event, event AS result, row.audit AS audit
    """ + _EVENTS,
)

FAIL = Cypher(
    "psi.fail",
    _FINISH + """
    SET j.status = 'FAILED', j.errorCode = row.code, j.errorMessage = row.message,
        j.completedAt = row.at, j.request = null
    WITH row, {id: row.eventId, at: row.at, tenant: j.tenant, jobId: j.id,
               status: 'FAILED'} AS event
    WITH event, event AS result, row.audit AS audit
    """ + _EVENTS,
)

CANCEL = Cypher(
    "psi.cancel",
    """
    MATCH (j:PsiJob)
    WHERE (j.id = $id AND ($tenant IS NULL OR j.tenant = $tenant))
      AND j.status IN ['QUEUED', 'RUNNING']
    OPTIONAL MATCH (q:PsiQueueEntry {jobId: j.id})
    DELETE q
    SET j.status = 'CANCELLED', j.completedAt = $now, j.request = null
    WITH {id: $eventId, at: $now, tenant: j.tenant, jobId: j.id,
          status: 'CANCELLED'} AS event
    WITH event, event AS result, null AS audit
    """ + _EVENTS,
)

# An opted-out party takes its pending jobs with it, on either side of the intersection.
CANCEL_FOR_PARTY = Cypher(
    "psi.cancel_for_party",
    """
    MATCH (q:PsiQueueEntry)
    MATCH (j:PsiJob {id: q.jobId})
    WHERE j.tenant = $party OR j.partner = $party
    DELETE q
    SET j.status = 'CANCELLED', j.completedAt = $now, j.request = null,
        j.errorCode = 'FORBIDDEN', j.errorMessage = 'a party opted out'
    WITH {id: $now + ':' + j.id, at: $now, tenant: j.tenant, jobId: j.id,
          status: 'CANCELLED'} AS event
    WITH event, event AS result, null AS audit
    """ + _EVENTS,
)

# Finished jobs past their retention: found by the creation-time index, deleted by id
# (decision 0018). Their audit events stay: they are kept on their own terms.
FINISHED_BEFORE = Cypher(
    "psi.finished_before",
    """
    MATCH (j:PsiJob) WHERE j.createdAt < $before
    WITH j WHERE j.status IN ['DONE', 'FAILED', 'CANCELLED']
    RETURN j.id AS id
    LIMIT $limit
    """,
)

RETIRE = Cypher(
    "psi.retire",
    """
    UNWIND $ids AS id
    MATCH (j:PsiJob {id: id})
    DELETE j
    RETURN count(*) AS retired
    """,
)

# Earlier versions kept a finished job's response on the job and its envelope on a
# ProofBundle node (every DONE job had one); `PsiResults.adopt_inline` moves them out of
# the graph, a slice at a time, deleting the bundle nodes as it goes.
INLINE_RESULTS = Cypher(
    "psi.inline_results",
    """
    MATCH (b:ProofBundle)
    WITH b LIMIT $limit
    OPTIONAL MATCH (j:PsiJob {id: b.jobId})
    RETURN b.jobId AS id, j.createdAt AS createdAt, j.response AS response,
           b.envelope AS envelope
    """,
)

MOVE_RESULTS = Cypher(
    "psi.move_results",
    """
    UNWIND $rows AS row
    MATCH (b:ProofBundle {jobId: row.id})
    OPTIONAL MATCH (j:PsiJob {id: row.id})
    DELETE b
    FOREACH (_ IN CASE WHEN j IS NULL THEN [] ELSE [1] END |
      SET j.responseRef = row.responseRef, j.bundleRef = row.bundleRef,
          j.bundleHash = row.bundleHash, j.response = null)
    RETURN count(*) AS moved
    """,
)
