"""Idempotent writes of provenance events. Rows arrive validated, with keys computed.

Facts that never change (a commit's sha, an image's base) are set ON CREATE only, so
re-sending an event changes nothing; a job's status and an anomaly's status may move on.
"""

from trustfabric.graph.cypher import Cypher

ENSURE_TENANT = Cypher(
    "ingest.ensure_tenant",
    "MERGE (t:Tenant {id: $tenant}) ON CREATE SET t.createdAt = $now RETURN t.id AS id",
)

EXISTING_KEYS = Cypher(
    "ingest.existing_keys",
    "UNWIND $keys AS k MATCH (n:Entity {key: k}) RETURN n.key AS key",
)

# A link already recorded towards another node than the event names: the event conflicts.
CONFLICTING_LINKS = Cypher(
    "ingest.conflicting_links",
    """
    UNWIND $links AS l
    MATCH (s:Entity {key: l.source})-[r]->(t:Entity)
    WHERE type(r) = l.type AND t.key <> l.target
    RETURN l.source AS source, l.type AS type
    """,
)

UPSERT_COMMITS = Cypher(
    "ingest.upsert_commits",
    """
    UNWIND $rows AS row
    MERGE (repo:Entity:Repo {key: row.repoKey})
      ON CREATE SET repo.kind = 'Repo', repo.tenant = $tenant, repo.url = row.repoUrl
    MERGE (c:Entity:Commit {key: row.key})
      ON CREATE SET c += row.props
    MERGE (repo)-[:HAS_COMMIT]->(c)
    RETURN count(c) AS n
    """,
)

UPSERT_PARENTS = Cypher(
    "ingest.upsert_parents",
    """
    UNWIND $rows AS row
    MATCH (c:Entity {key: row.key})
    MERGE (p:Entity:Commit {key: row.parentKey})
      ON CREATE SET p.kind = 'Commit', p.tenant = $tenant, p.sha = row.parentSha
    MERGE (c)-[:PARENT]->(p)
    RETURN count(p) AS n
    """,
)

UPSERT_IMAGES = Cypher(
    "ingest.upsert_images",
    """
    UNWIND $rows AS row
    MERGE (i:Entity:Image {key: row.key})
      ON CREATE SET i += row.props
    WITH i, row WHERE row.commitKey IS NOT NULL
    MATCH (c:Entity {key: row.commitKey})
    MERGE (i)-[:BUILT_FROM]->(c)
    RETURN count(i) AS n
    """,
)

LINK_BASE_IMAGES = Cypher(
    "ingest.link_base_images",
    """
    UNWIND $rows AS row
    MATCH (i:Entity {key: row.key}), (b:Entity {key: row.baseKey})
    MERGE (i)-[:BASED_ON]->(b)
    RETURN count(b) AS n
    """,
)

UPSERT_POLICY_VERSIONS = Cypher(
    "ingest.upsert_policy_versions",
    """
    UNWIND $rows AS row
    MERGE (p:Entity:Policy {key: row.policyKey})
      ON CREATE SET p.kind = 'Policy', p.tenant = $tenant, p.policyId = row.policyId
    MERGE (v:Entity:PolicyVersion {key: row.key})
      ON CREATE SET v += row.props
    MERGE (p)-[:HAS_VERSION]->(v)
    RETURN count(v) AS n
    """,
)

UPSERT_JOBS = Cypher(
    "ingest.upsert_jobs",
    """
    UNWIND $rows AS row
    MATCH (i:Entity {key: row.imageKey})
    MERGE (j:Entity:Job {key: row.key})
      ON CREATE SET j += row.props
    SET j.status = row.status, j.finishedAt = row.finishedAt
    MERGE (j)-[:RAN]->(i)
    WITH j, row WHERE row.policyVersionKey IS NOT NULL
    MATCH (v:Entity {key: row.policyVersionKey})
    MERGE (j)-[:UNDER]->(v)
    RETURN count(j) AS n
    """,
)

UPSERT_ANOMALIES = Cypher(
    "ingest.upsert_anomalies",
    """
    UNWIND $rows AS row
    MATCH (j:Entity {key: row.jobKey})
    MERGE (a:Entity:Anomaly {key: row.key})
      ON CREATE SET a += row.props
    SET a.status = row.status
    MERGE (a)-[:OBSERVED_IN]->(j)
    RETURN count(a) AS n
    """,
)
