"""Idempotent writes of provenance events. Rows arrive validated, with keys computed and
each key once per statement.

Nodes are made with OPTIONAL MATCH on :Entity {key} and CREATE, not MERGE (decision 0018).
Facts that never change are written only when the node is created, so re-sending an event
changes nothing; a job's and an anomaly's status may move on. Relationships between bound
nodes are MERGEd.
"""

from typing import Final

from trustfabric.domain.provenance.model import KINDS, RELATIONSHIPS
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

# A link recorded from another node than the event names, towards a node that may have
# only one such link coming in (a commit's repo): the event conflicts.
CONFLICTING_INCOMING_LINKS = Cypher(
    "ingest.conflicting_incoming_links",
    """
    UNWIND $links AS l
    MATCH (t:Entity {key: l.target})<-[r]-(s:Entity)
    WHERE type(r) = l.type AND s.key <> l.source
    RETURN l.target AS target, l.type AS type
    """,
)

# Every image already reached by BASED_ON from each base image a batch links to: the ways
# back that a new link could close into a cycle. Unbounded, since a cycle of any length
# must be found; relationship uniqueness ends each walk, even on a cycle already stored.
BASES_REACHED = Cypher(
    "ingest.bases_reached",
    """
    UNWIND $keys AS k
    MATCH (:Entity {key: k})-[:BASED_ON*1..]->(x:Entity)
    RETURN DISTINCT k AS start, x.key AS reached
    """,
)

# One statement per kind: the label comes from the allow-list of kinds, never from input.
CREATE_MISSING: Final[dict[str, Cypher]] = {
    kind: Cypher(
        f"ingest.create_missing.{kind}",
        "UNWIND $rows AS row"
        " OPTIONAL MATCH (existing:Entity {key: row.key})"
        " WITH row, existing WHERE existing IS NULL"
        f" CREATE (n:Entity:{kind}) SET n = row.props"
        " RETURN count(n) AS created",
    )
    for kind in KINDS
}

# A commit first seen as a parent (a stub with only its sha) gets its details later.
FILL_COMMITS = Cypher(
    "ingest.fill_commits",
    """
    UNWIND $rows AS row
    MATCH (c:Entity {key: row.key})
    SET c.message = coalesce(c.message, row.props.message),
        c.author = coalesce(c.author, row.props.author),
        c.committedAt = coalesce(c.committedAt, row.props.committedAt)
    RETURN count(c) AS n
    """,
)

LINKS: Final[dict[str, Cypher]] = {
    type: Cypher(
        f"ingest.link.{type}",
        "UNWIND $rows AS row"
        " MATCH (a:Entity {key: row.source}), (b:Entity {key: row.target})"
        f" MERGE (a)-[:{type}]->(b)"
        " RETURN count(*) AS n",
    )
    for type in RELATIONSHIPS
}

# What may change after a node exists: a job's status and end, an anomaly's status; and
# only forward, so a replayed older event changes nothing.
UPDATE = Cypher(
    "ingest.update",
    """
    UNWIND $rows AS row
    MATCH (n:Entity {key: row.key})
    WITH n, row WHERE row.changes.statusRank >= coalesce(n.statusRank, 0)
    SET n += row.changes
    RETURN count(n) AS n
    """,
)
