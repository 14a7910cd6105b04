"""A tenant's week, read for its digest; digests stored once, read and acted on."""

from trustfabric.graph.cypher import Cypher

PROMOTIONS = Cypher(
    "rollups.promotions",
    """
    MATCH (p:Promotion)
    WHERE p.tenant = $tenant AND p.at >= $start AND p.at < $end
    RETURN p.allowed AS allowed, p.insight AS insight LIMIT 20000
    """,
)

# The tenant's jobs created from `LONGEST_JOB` before the week to its end, a range of the
# index of its pages (`graph.psi.page_key`, newest first: `low` is the later end).
PROOFS = Cypher(
    "rollups.proofs",
    """
    MATCH (j:PsiJob)
    WHERE j.pageKey > $low AND j.pageKey < $high
    WITH j WHERE j.tenant = $tenant AND j.completedAt >= $start AND j.completedAt < $end
    RETURN j.status AS status, count(j) AS n
    """,
)

# The tenant's PSI requests of the week, from the audit log's tenant-and-key index (the
# tenant compared as well, as pages do): shed requests are recorded as one event a second
# with their count.
DEMAND = Cypher(
    "rollups.demand",
    """
    MATCH (a:AuditBatch)
    WHERE a.tenantKey > $low AND a.tenantKey < $high
    WITH a WHERE a.tenant = $tenant AND 'psi.request' IN a.actions
    UNWIND range(0, size(a.actions) - 1) AS i
    WITH a, i WHERE a.actions[i] = 'psi.request'
    RETURN a.outcomes[i] AS outcome, a.details[i] AS details LIMIT 200000
    """,
)

ANOMALIES = Cypher(
    "rollups.anomalies",
    """
    MATCH (a:Anomaly)
    WHERE a.tenant = $tenant AND coalesce(a.observedAt, a.decidedAt) >= $start
      AND coalesce(a.observedAt, a.decidedAt) < $end
    RETURN coalesce(a.decision, 'PAGE') AS decision, count(a) AS n
    """,
)

TOP_ANOMALIES = Cypher(
    "rollups.top_anomalies",
    """
    MATCH (a:Anomaly)
    WHERE a.tenant = $tenant AND coalesce(a.observedAt, a.decidedAt) >= $start
      AND coalesce(a.observedAt, a.decidedAt) < $end AND coalesce(a.decision, 'PAGE') = 'PAGE'
    WITH a, CASE a.severity WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2
            ELSE 3 END AS rank
    RETURN a.key AS key, a.anomalyId AS anomalyId, a.severity AS severity,
           a.anomalyKind AS kind, a.summary AS summary
    ORDER BY rank, a.observedAt DESC LIMIT 5
    """,
)

ROLLUP = Cypher(
    "rollups.rollup",
    """
    MATCH (r:Entity {key: $key})
    WHERE $tenant IS NULL OR r.tenant = $tenant
    RETURN r {.*} AS rollup
    """,
)

LATEST_BEFORE = Cypher(
    "rollups.latest_before",
    """
    MATCH (r:Rollup) WHERE r.tenant = $tenant AND r.week < $week
    RETURN r {.*} AS rollup ORDER BY r.week DESC LIMIT 1
    """,
)

MARK_READ = Cypher(
    "rollups.mark_read",
    """
    MATCH (r:Entity {key: $key})
    WITH r, coalesce(r.readBy, []) AS readers
    SET r.readBy = CASE WHEN $reader IN readers THEN readers ELSE readers + [$reader] END,
        r.firstReadAt = coalesce(r.firstReadAt, $at)
    RETURN size(r.readBy) AS readers
    """,
)

MARK_DONE = Cypher(
    "rollups.mark_done",
    """
    MATCH (r:Entity {key: $key})
    WITH r, coalesce(r.done, []) AS done
    SET r.done = CASE WHEN $item IN done THEN done ELSE done + [$item] END
    RETURN size(r.done) AS done
    """,
)

TENANTS = Cypher("rollups.tenants", "MATCH (t:Tenant) RETURN t.id AS tenant ORDER BY t.id")

READERSHIP = Cypher(
    "rollups.readership",
    """
    MATCH (r:Rollup) WHERE r.week = $week
    RETURN r.tenant AS tenant, size(coalesce(r.readBy, [])) AS readers
    """,
)
