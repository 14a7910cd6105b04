from trustfabric.graph.cypher import Cypher

CREATE = Cypher(
    "tokens.create",
    """
    MERGE (tenant:Tenant {id: $tenant}) ON CREATE SET tenant.createdAt = $now
    CREATE (t:ApiToken {id: $id, hash: $hash, tenant: $tenant, role: $role, name: $name,
                        createdAt: $now, revoked: false})
    RETURN t.id AS id
    """,
)

BY_HASH = Cypher(
    "tokens.by_hash",
    "MATCH (t:ApiToken {hash: $hash}) RETURN t {.id, .tenant, .role, .revoked} AS token",
)

REVOKE = Cypher(
    "tokens.revoke",
    "MATCH (t:ApiToken {id: $id}) SET t.revoked = true RETURN t.hash AS hash",
)

LIST = Cypher(
    "tokens.list",
    """
    MATCH (t:ApiToken) WHERE $tenant IS NULL OR t.tenant = $tenant
    RETURN t.id AS id, t.tenant AS tenant, t.role AS role, t.name AS name,
           t.createdAt AS createdAt, t.revoked AS revoked
    ORDER BY t.createdAt, t.id
    """,
)

TENANTS = Cypher("tokens.tenants", "MATCH (t:Tenant) RETURN t.id AS id ORDER BY t.id")
