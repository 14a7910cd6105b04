"""Policy versions with their rules, environments, snapshots and promotions. Nodes are
created and linked with ingest's statements (`queries/ingest.py`): the same OPTIONAL MATCH
and CREATE on the :Entity key, so policy versions are the lineage's own nodes."""

from trustfabric.graph.cypher import Cypher

# $tenant scopes every read; operators pass null.
VERSION = Cypher(
    "policy.version",
    """
    MATCH (v:Entity {key: $key})
    WHERE $tenant IS NULL OR v.tenant = $tenant
    RETURN v {.*} AS version
    """,
)

VERSIONS_OF = Cypher(
    "policy.versions_of",
    """
    MATCH (v:PolicyVersion)
    WHERE v.tenant = $tenant AND v.policyId = $policyId
    RETURN v {.*} AS version ORDER BY v.createdAt
    """,
)

ENVIRONMENT = Cypher(
    "policy.environment",
    """
    MATCH (e:Entity {key: $key})
    WHERE $tenant IS NULL OR e.tenant = $tenant
    RETURN e {.*} AS environment
    """,
)

# Every tenant's drifted environments, counted: what the drift metric reports.
DRIFTED = Cypher(
    "policy.drifted",
    """
    MATCH (e:Environment)
    WHERE e.deployed IS NOT NULL AND e.deployed <> coalesce(e.declared, '')
    RETURN e.tenant AS tenant, count(e) AS drifted
    """,
)

ENVIRONMENTS = Cypher(
    "policy.environments",
    """
    MATCH (e:Environment) WHERE e.tenant = $tenant
    RETURN e {.*} AS environment ORDER BY e.position, e.name
    """,
)

# The image's latest snapshot.
LATEST_SNAPSHOT = Cypher(
    "policy.latest_snapshot",
    """
    MATCH (s:Snapshot) WHERE s.imageKey = $imageKey
    RETURN s {.*} AS snapshot ORDER BY s.takenAt DESC, s.key DESC LIMIT 1
    """,
)

SNAPSHOTS = Cypher(
    "policy.snapshots",
    """
    MATCH (s:Snapshot) WHERE s.tenant = $tenant
    RETURN s.key AS key, s.facts AS facts ORDER BY s.takenAt DESC LIMIT $limit
    """,
)

PROMOTION = Cypher(
    "policy.promotion",
    """
    MATCH (p:Entity {key: $key})
    WHERE $tenant IS NULL OR p.tenant = $tenant
    RETURN p {.*} AS promotion
    """,
)

# An image's promotions, newest first (the explorer's image hop shows them).
PROMOTIONS_OF_IMAGE = Cypher(
    "policy.promotions_of_image",
    """
    MATCH (p:Promotion)
    WHERE p.imageKey = $imageKey AND ($tenant IS NULL OR p.tenant = $tenant)
    RETURN p {.*} AS promotion ORDER BY p.at DESC LIMIT $limit
    """,
)

# The last passing promotion to the same environment of an image of the same lineage:
# the image itself, or any image built from a commit of the same repository.
BASELINE = Cypher(
    "policy.baseline",
    """
    MATCH (i:Entity {key: $imageKey})
    OPTIONAL MATCH (i)-[:BUILT_FROM]->(:Commit)<-[:HAS_COMMIT]-(r:Repo)
    OPTIONAL MATCH (r)-[:HAS_COMMIT]->(:Commit)<-[:BUILT_FROM]-(sibling:Image)
    WITH i, collect(DISTINCT sibling.key) + [i.key] AS images
    MATCH (p:Promotion)
    WHERE p.tenant = $tenant AND p.imageKey IN images AND p.to = $to AND p.allowed = true
      AND p.at < $at
    WITH p ORDER BY p.at DESC LIMIT 1
    MATCH (p)-[:UNDER]->(v:PolicyVersion), (p)-[:USED]->(s:Snapshot)
    RETURN p.promotionId AS promotionId, v {.*} AS version, s.facts AS facts,
           s.imageDigest AS imageDigest
    """,
)

# The environment's recent decisions, for replaying a drift under both versions.
RECENT_DECISIONS = Cypher(
    "policy.recent_decisions",
    """
    MATCH (p:Promotion)
    WHERE p.tenant = $tenant AND p.to = $to
    WITH p ORDER BY p.at DESC LIMIT $limit
    MATCH (p)-[:USED]->(s:Snapshot)
    RETURN DISTINCT s.key AS key, s.facts AS facts
    """,
)

# Rules go on a version once, and only when its hash is the one recorded: a version
# ingested first (hash only) is completed, a different content is refused by the caller.
COMPLETE_VERSION = Cypher(
    "policy.complete_version",
    """
    MATCH (v:Entity {key: $key})
    SET v.rules = coalesce(v.rules, CASE WHEN v.hash = $hash THEN $rules END)
    RETURN v {.*} AS version
    """,
)

UPDATE_ENVIRONMENT = Cypher(
    "policy.update_environment",
    """
    MATCH (e:Entity {key: $key})
    SET e.position = coalesce($position, e.position, 0),
        e.policyId = coalesce($policyId, e.policyId),
        e.declared = coalesce($declared, e.declared),
        e.deployed = coalesce($deployed, e.deployed),
        e.updatedAt = $now
    RETURN e {.*} AS environment
    """,
)

# Where an image comes from, for an insight's links into the lineage.
IMAGE_ORIGIN = Cypher(
    "policy.image_origin",
    """
    MATCH (i:Entity {key: $imageKey})
    OPTIONAL MATCH (i)-[:BUILT_FROM]->(c:Commit)
    OPTIONAL MATCH (i)-[:BASED_ON]->(b:Image)
    RETURN c.sha AS commit, collect(b.digest) AS baseImages
    """,
)

PROPOSAL = Cypher(
    "policy.proposal",
    """
    MATCH (p:Entity {key: $key})
    WHERE $tenant IS NULL OR p.tenant = $tenant
    RETURN p {.*} AS proposal
    """,
)

PROPOSALS = Cypher(
    "policy.proposals",
    """
    MATCH (p:DriftProposal) WHERE p.tenant = $tenant
    RETURN p {.*} AS proposal ORDER BY p.createdAt DESC LIMIT 100
    """,
)

SOAKING = Cypher(
    "policy.soaking",
    """
    MATCH (p:DriftProposal)
    WHERE p.status = 'SOAKING' AND p.tenant = $tenant AND p.environment = $environment
    RETURN p {.*} AS proposal
    """,
)

DUE = Cypher(
    "policy.proposals_due",
    """
    MATCH (p:DriftProposal)
    WHERE p.status = 'SOAKING' AND p.soakUntil <= $now
    RETURN p {.*} AS proposal LIMIT 100
    """,
)

# Compare and set: a proposal moves on only from the status its mover saw.
MOVE_PROPOSAL = Cypher(
    "policy.move_proposal",
    """
    MATCH (p:Entity {key: $key})
    WHERE p.status = $expected
    SET p += $changes
    RETURN p {.*} AS proposal
    """,
)

SET_DEPLOYED = Cypher(
    "policy.set_deployed",
    """
    MATCH (e:Entity {key: $key})
    SET e.deployed = $deployed, e.updatedAt = $now
    RETURN e.key AS key
    """,
)
