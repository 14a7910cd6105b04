from trustfabric.graph.cypher import Cypher

APPLIED = Cypher(
    "migrations.applied",
    "MATCH (m:Migration) RETURN m.id AS id, m.checksum AS checksum ORDER BY m.id",
)
RECORD = Cypher(
    "migrations.record",
    """
    MERGE (m:Migration {id: $id})
    ON CREATE SET m.name = $name, m.checksum = $checksum, m.appliedAt = datetime()
    """,
)
