"""API tokens: issue, verify (with a short cache), revoke."""

from async_lru import alru_cache

from trustfabric.domain.audit import now_iso
from trustfabric.domain.auth import Caller, IssuedToken, Role, hash_token, new_token
from trustfabric.domain.ids import check_name
from trustfabric.domain.origin import ORIGIN
from trustfabric.errors import NotFound, Unauthenticated
from trustfabric.graph.executor import GraphExecutor
from trustfabric.graph.queries import tokens as q


class TokenRepository:
    def __init__(self, executor: GraphExecutor, cache_ttl_s: float) -> None:
        self._executor = executor
        # Verified callers by token hash: saves a round trip per request, one lookup serves
        # every request that arrives while it runs, and a revocation made elsewhere takes
        # effect within the TTL. Failures are not cached.
        self._lookup = alru_cache(maxsize=10_000, ttl=cache_ttl_s)(self._caller)

    async def create(self, tenant: str, role: Role, name: str = "") -> tuple[str, str]:
        """Returns (token id, secret). The secret is not stored and cannot be shown again."""
        check_name(tenant, "tenant")  # every key the token's writes make starts with it
        token_id, secret, digest = new_token()
        await self._executor.write(
            q.CREATE, id=token_id, hash=digest, tenant=tenant, role=role.value, name=name,
            now=now_iso(),
        )
        return token_id, secret

    async def verify(self, secret: str) -> Caller:
        return await self._lookup(hash_token(secret))

    async def _caller(self, digest: str) -> Caller:
        # counted apart from the requests' own statements: one lookup serves many requests
        # and, once the TTL has passed, lands on whichever one comes next
        origin = ORIGIN.set("auth")
        try:
            rows = await self._executor.read(q.BY_HASH, hash=digest)
        finally:
            ORIGIN.reset(origin)
        if not rows or rows[0]["token"]["revoked"]:
            raise Unauthenticated("invalid or revoked token")
        token = rows[0]["token"]
        return Caller(token_id=token["id"], tenant=token["tenant"], role=Role(token["role"]))

    async def revoke(self, token_id: str) -> None:
        rows = await self._executor.write(q.REVOKE, id=token_id)
        if not rows:
            raise NotFound(f"token {token_id}")
        self._lookup.cache_invalidate(rows[0]["hash"])

    async def issued(self, tenant: str | None = None) -> list[IssuedToken]:
        """Every token (of `tenant`), oldest first; never the secret, nor its hash."""
        return [IssuedToken(id=row["id"], tenant=row["tenant"], role=Role(row["role"]),
                            name=row["name"] or "", created_at=row["createdAt"],
                            revoked=bool(row["revoked"]))
                for row in await self._executor.read(q.LIST, tenant=tenant)]

    async def tenants(self) -> list[str]:
        return [row["id"] for row in await self._executor.read(q.TENANTS)]
