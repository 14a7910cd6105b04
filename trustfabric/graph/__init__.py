"""The graph layer: driver, embedded server, and every Cypher query of the service."""
