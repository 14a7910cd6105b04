"""Lookups of provenance nodes by key, and batch loads of their neighbours."""

from typing import Final, LiteralString

from trustfabric.domain.provenance.enums import SEVERITY_RANK, AnomalyOrder
from trustfabric.graph.cypher import Cypher

# $tenant is null only for operators, who may read any tenant.
BY_KEYS = Cypher(
    "provenance.by_keys",
    """
    UNWIND $keys AS k
    MATCH (n:Entity {key: k})
    WHERE $tenant IS NULL OR n.tenant = $tenant
    RETURN n {.*} AS node
    """,
)

# The relations a field can follow, named by `<kind>.<field>`. Patterns are literals from
# this allow-list only: nothing a caller sends becomes part of a query's text.
_RELATION_PATTERNS: Final[dict[str, LiteralString]] = {
    "Anomaly.job": "(src)-[:OBSERVED_IN]->(n:Job)",
    "Job.anomalies": "(src)<-[:OBSERVED_IN]-(n:Anomaly)",
    "Job.image": "(src)-[:RAN]->(n:Image)",
    "Job.policyVersion": "(src)-[:UNDER]->(n:PolicyVersion)",
    "Image.commit": "(src)-[:BUILT_FROM]->(n:Commit)",
    "Image.baseImages": "(src)-[:BASED_ON]->(n:Image)",
    "Image.jobs": "(src)<-[:RAN]-(n:Job)",
    "Commit.repo": "(src)<-[:HAS_COMMIT]-(n:Repo)",
    "Commit.parents": "(src)-[:PARENT]->(n:Commit)",
    "Commit.images": "(src)<-[:BUILT_FROM]-(n:Image)",
    "Repo.commits": "(src)-[:HAS_COMMIT]->(n:Commit)",
    "Policy.versions": "(src)-[:HAS_VERSION]->(n:PolicyVersion)",
    "PolicyVersion.policy": "(src)<-[:HAS_VERSION]-(n:Policy)",
}

RELATED: Final[dict[str, Cypher]] = {
    name: Cypher(
        f"provenance.related.{name}",
        "UNWIND $keys AS k MATCH (src:Entity {key: k}) MATCH "
        + pattern
        + " WHERE n.tenant = src.tenant"
        # ordered and bounded per source node: one LIMIT over the batch would cut the
        # neighbours of the last keys asked for
        " WITH k, n ORDER BY n.key"
        " WITH k, collect(n {.*}) AS nodes"
        " RETURN k AS key, nodes[0..$limit] AS nodes",
    )
    for name, pattern in _RELATION_PATTERNS.items()
}

# Severity as its rank, for ordering: the CASE is built from the domain's ranks (an
# allow-listed vocabulary), never from input.
_RANK: Final[LiteralString] = (
    "CASE n.severity"
    + "".join(f" WHEN '{s.value}' THEN {r}" for s, r in SEVERITY_RANK.items())
    + " ELSE -1 END"
)

# A page of anomalies in a total order, resumed after the row a cursor names: newest
# observed first (never observed last, as ''), ties by key; by severity, most severe first,
# then the same. `$afterKey` is null for the first page, else the last row's key, with its
# rank and observedAt ('' when never observed) in `$afterRank` and `$afterAt`.
_ORDERED: Final[LiteralString] = """
    MATCH (n:Anomaly)
    WHERE n.tenant = $tenant
      AND ($severity IS NULL OR n.severity = $severity)
      AND ($status IS NULL OR n.status = $status)
      AND ($anomalyId IS NULL OR n.anomalyId = $anomalyId)
    WITH n, coalesce(n.observedAt, '') AS at, %s AS rank
    WHERE $afterKey IS NULL
       OR rank < $afterRank
       OR (rank = $afterRank AND (at < $afterAt OR (at = $afterAt AND n.key < $afterKey)))
    RETURN n {.*} AS node
    ORDER BY rank DESC, at DESC, n.key DESC
    LIMIT $limit
"""
ANOMALIES_BY_ORDER: Final[dict[AnomalyOrder, Cypher]] = {
    AnomalyOrder.NEWEST: Cypher("provenance.anomalies_newest", _ORDERED % "0"),
    AnomalyOrder.SEVERITY: Cypher("provenance.anomalies_by_severity", _ORDERED % _RANK),
}

# In key order, for exports that read every anomaly.
ANOMALIES_PAGE = Cypher(
    "provenance.anomalies_page",
    """
    MATCH (n:Anomaly)
    WHERE n.tenant = $tenant AND n.key > $after
      AND ($severity IS NULL OR n.severity = $severity)
      AND ($status IS NULL OR n.status = $status)
      AND ($anomalyId IS NULL OR n.anomalyId = $anomalyId)
    RETURN n {.*} AS node
    ORDER BY n.key
    LIMIT $limit
    """,
)
