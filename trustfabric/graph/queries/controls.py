from trustfabric.graph.cypher import Cypher

GET = Cypher(
    "controls.get",
    "MATCH (c:PilotControls {id: 'current'}) RETURN c.document AS document, c.revision AS revision",
)

# First start only: the YAML file seeds the document; later changes go through mutations.
INIT = Cypher(
    "controls.init",
    """
    MERGE (c:PilotControls {id: 'current'})
      ON CREATE SET c.document = $document, c.revision = 1, c.updatedAt = $now
    RETURN c.document AS document, c.revision AS revision
    """,
)

# Optimistic: the update applies only to the revision it was computed from.
UPDATE = Cypher(
    "controls.update",
    """
    MATCH (c:PilotControls {id: 'current'}) WHERE c.revision = $revision
    SET c.document = $document, c.revision = $revision + 1, c.updatedAt = $now
    RETURN c.revision AS revision
    """,
)
