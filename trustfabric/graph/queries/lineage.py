"""Lineage walks. Each answers in one statement: a lineage is never a query per hop."""

from typing import Final

from trustfabric.graph.cypher import Cypher

MAX_PATH_HOPS: Final = 8
MAX_NEIGHBOR_DEPTH: Final = 3

# anomaly → job (+ policy version in force) → image → base images (at most 8) → commit → repo
BY_ANOMALY = Cypher(
    "lineage.by_anomaly",
    """
    MATCH (a:Entity {key: $key})
    WHERE a.kind = 'Anomaly' AND ($tenant IS NULL OR a.tenant = $tenant)
    OPTIONAL MATCH (a)-[:OBSERVED_IN]->(j:Job)
    OPTIONAL MATCH (j)-[:UNDER]->(pv:PolicyVersion)
    OPTIONAL MATCH (j)-[:RAN]->(i:Image)
    OPTIONAL MATCH (i)-[:BUILT_FROM]->(c:Commit)
    OPTIONAL MATCH (c)<-[:HAS_COMMIT]-(r:Repo)
    OPTIONAL MATCH chain = (i)-[:BASED_ON*1..8]->(b:Image)
    WITH a, j, pv, i, c, r, chain
    ORDER BY length(chain) DESC
    LIMIT 1
    RETURN a {.*} AS anomaly, j {.*} AS job, pv {.*} AS policyVersion, i {.*} AS image,
           [n IN coalesce(nodes(chain), [])[1..] | n {.*}] AS baseImages,
           c {.*} AS commit, r {.*} AS repo
    """,
)

# The owner is bound by WITH before the list predicates: ArcadeDB evaluates a predicate
# that reads a pattern variable of the same MATCH as false.
# Variable-length bounds cannot be parameters in Cypher, so each allowed bound is its own
# statement, built from integers in a fixed range.
PATH: Final[dict[int, Cypher]] = {
    hops: Cypher(
        f"lineage.path.{hops}",
        """
        MATCH (a:Entity {key: $source}), (b:Entity {key: $target})
        WHERE a.tenant = b.tenant AND ($tenant IS NULL OR a.tenant = $tenant)
        WITH a, b, a.tenant AS owner
        MATCH p = shortestPath((a)-[*..%d]-(b))
        WHERE all(x IN nodes(p) WHERE x.tenant = owner AND x.kind IN $kinds)
        RETURN [x IN nodes(p) | x {.*}] AS nodes,
               [r IN relationships(p) |
                {source: startNode(r).key, type: type(r), target: endNode(r).key}] AS edges
        """ % hops,  # noqa: UP031 - an int from range(), never input
    )
    for hops in range(1, MAX_PATH_HOPS + 1)
}

NEIGHBORS: Final[dict[int, Cypher]] = {
    depth: Cypher(
        f"lineage.neighbors.{depth}",
        """
        MATCH (s:Entity {key: $key})
        WHERE $tenant IS NULL OR s.tenant = $tenant
        WITH s, s.tenant AS owner
        MATCH p = (s)-[*1..%d]-(n:Entity)
        WHERE all(x IN nodes(p) WHERE x.tenant = owner AND x.kind IN $kinds)
        WITH p LIMIT $limit
        UNWIND relationships(p) AS r
        WITH DISTINCT r
        WITH r, startNode(r) AS a, endNode(r) AS b
        RETURN a {.*} AS source, type(r) AS type, b {.*} AS target
        """ % depth,  # noqa: UP031 - an int from range(), never input
    )
    for depth in range(1, MAX_NEIGHBOR_DEPTH + 1)
}

# Whether the caller can see a commit of this sha at all: an impact without images is not
# the same answer as an unknown commit.
COMMIT_EXISTS = Cypher(
    "lineage.commit_exists",
    """
    MATCH (c:Commit)
    WHERE c.sha = $sha AND ($tenant IS NULL OR c.tenant = $tenant)
    RETURN count(c) AS found
    """,
)

# Blast radius of a commit: images built from it or from commits after it, images based on
# those, the jobs that ran any of them, and the open anomalies seen in those jobs.
IMPACT_IMAGES = Cypher(
    "lineage.impact_images",
    """
    MATCH (c:Commit)
    WHERE c.sha = $sha AND ($tenant IS NULL OR c.tenant = $tenant)
    MATCH (c)<-[:PARENT*0..20]-(d:Commit)<-[:BUILT_FROM]-(built:Image)
    WHERE d.tenant = c.tenant
    MATCH (built)<-[:BASED_ON*0..8]-(img:Image)
    WHERE img.tenant = c.tenant
    RETURN DISTINCT img {.*} AS node
    ORDER BY node.key
    LIMIT $limit
    """,
)

IMPACT_JOBS = Cypher(
    "lineage.impact_jobs",
    """
    UNWIND $images AS k
    MATCH (:Entity {key: k})<-[:RAN]-(j:Job)
    RETURN DISTINCT j {.*} AS node
    ORDER BY node.key
    LIMIT $limit
    """,
)

IMPACT_ANOMALIES = Cypher(
    "lineage.impact_anomalies",
    """
    UNWIND $jobs AS k
    MATCH (:Entity {key: k})<-[:OBSERVED_IN]-(a:Anomaly)
    WHERE a.status = 'OPEN'
    RETURN DISTINCT a {.*} AS node
    ORDER BY node.key
    LIMIT $limit
    """,
)
