"""Suppression rules, and the paging decisions of anomalies (read and written within the
ingest transaction that records them)."""

from typing import Final, LiteralString

from trustfabric.graph.cypher import Cypher

# What a decision reads of an anomaly and of the lineage it was observed in.
_FACTS: Final[LiteralString] = """
    OPTIONAL MATCH (a)-[:OBSERVED_IN]->(j:Job)
    OPTIONAL MATCH (j)-[:RAN]->(i:Image)
    OPTIONAL MATCH (i)-[:BUILT_FROM]->(c:Commit)
    RETURN a.key AS key, a.anomalyId AS anomalyId, a.anomalyKind AS kind,
           a.severity AS severity, a.fingerprint AS fingerprint, j.jobId AS jobId,
           j.pipeline AS pipeline, i.digest AS imageDigest, c.sha AS commitSha,
           coalesce(a.observedAt, $now) AS observedAt, a.verdict AS verdict
"""

UNDECIDED = Cypher(
    "suppressions.undecided",
    "UNWIND $keys AS k MATCH (a:Entity {key: k}) WHERE a.decision IS NULL" + _FACTS,
)

RECENT_ANOMALIES = Cypher(
    "suppressions.recent_anomalies",
    """
    MATCH (a:Anomaly)
    WHERE a.tenant = $tenant AND coalesce(a.observedAt, a.decidedAt, '') >= $since
    WITH a LIMIT $limit
    """ + _FACTS,
)

PAGED_SINCE = Cypher(
    "suppressions.paged_since",
    """
    MATCH (a:Anomaly)
    WHERE a.fingerprint IN $fingerprints AND a.tenant = $tenant AND a.decision = 'PAGE'
      AND coalesce(a.observedAt, a.decidedAt) >= $since
    RETURN DISTINCT a.fingerprint AS fingerprint
    """,
)

SET_DECISIONS = Cypher(
    "suppressions.set_decisions",
    """
    UNWIND $rows AS row
    MATCH (a:Entity {key: row.key})
    SET a.decision = row.decision, a.suppressedBy = row.suppressedBy, a.decidedAt = $now
    RETURN count(a) AS n
    """,
)

TOUCH_RULES = Cypher(
    "suppressions.touch_rules",
    """
    UNWIND $keys AS k
    MATCH (r:Entity {key: k})
    SET r.lastMatchedAt = $now, r.matched = coalesce(r.matched, 0) + 1
    RETURN count(r) AS n
    """,
)

LABEL_ANOMALY = Cypher(
    "suppressions.label_anomaly",
    """
    MATCH (a:Entity {key: $key})
    WHERE $tenant IS NULL OR a.tenant = $tenant
    SET a.verdict = $verdict
    RETURN a {.*} AS node
    """,
)

RULE = Cypher(
    "suppressions.rule",
    """
    MATCH (r:Entity {key: $key})
    WHERE $tenant IS NULL OR r.tenant = $tenant
    RETURN r {.*} AS rule
    """,
)

RULES = Cypher(
    "suppressions.rules",
    """
    MATCH (r:SuppressionRule)
    WHERE r.tenant = $tenant AND r.status <> 'DELETED'
    RETURN r {.*} AS rule ORDER BY r.createdAt DESC LIMIT 1000
    """,
)

# Compare and set: a rule moves on only from the status its mover saw.
MOVE_RULE = Cypher(
    "suppressions.move_rule",
    """
    MATCH (r:Entity {key: $key})
    WHERE r.status = $expected
    SET r += $changes
    RETURN r {.*} AS rule
    """,
)

DUE_TO_EXPIRE = Cypher(
    "suppressions.due_to_expire",
    """
    MATCH (r:SuppressionRule)
    WHERE r.status = 'ACTIVE'
      AND (r.endsAt <= $now OR coalesce(r.lastMatchedAt, r.approvedAt) < $idleBefore)
    RETURN r {.*} AS rule LIMIT 1000
    """,
)
