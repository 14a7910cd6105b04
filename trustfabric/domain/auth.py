"""Callers, roles and API tokens. Tokens are random, shown once, and stored only hashed."""

import enum
import hashlib
import secrets
from dataclasses import dataclass

from trustfabric.domain.ids import check_name
from trustfabric.errors import Forbidden, Unauthenticated

TOKEN_PREFIX = "tf_"


class Role(enum.Enum):
    MEMBER = "member"  # reads and writes its own tenant
    AUDITOR = "auditor"  # reads its own tenant, writes nothing
    OPERATOR = "operator"  # reads and writes any tenant
    REVIEWER = "reviewer"  # a member who also approves what others propose in its tenant


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as an operator lists it: never its secret."""

    id: str
    tenant: str
    role: Role
    name: str
    created_at: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class Caller:
    token_id: str
    tenant: str
    role: Role

    @property
    def crosses_tenants(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def read_scope(self) -> str | None:
        """The tenant every read is limited to; None lets an operator read all tenants."""
        return None if self.crosses_tenants else self.tenant

    def tenant_for(self, requested: str | None) -> str:
        """The tenant a request acts on: the caller's own, or any one for an operator."""
        if requested is None or requested == self.tenant:
            return self.tenant
        check_name(requested, "tenant")
        if not self.crosses_tenants:
            raise Forbidden("this token may not act on another tenant")
        return requested

    def require_reviewer(self, tenant: str, author: str) -> None:
        """Approves a change in `tenant` proposed by token `author`: a reviewer or operator
        of that tenant, never the author."""
        if self.role not in (Role.REVIEWER, Role.OPERATOR):
            raise Forbidden("approving needs the reviewer role")
        if self.tenant != tenant:
            raise Forbidden("a change is approved from its own tenant")
        if self.token_id == author:
            raise Forbidden("a change is approved by someone other than its author")

    def require_write(self) -> None:
        if self.role is Role.AUDITOR:
            raise Forbidden("auditor tokens are read-only")


def bearer_secret(header: str) -> str:
    """The token in an `Authorization: Bearer <token>` header."""
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send Authorization: Bearer <token>")
    return secret.strip()


def new_token() -> tuple[str, str, str]:
    """(token id, the secret token to hand out once, its hash to store)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secrets.token_hex(8), secret, hash_token(secret)


def hash_token(secret: str) -> str:
    # A fast hash is right here: the token has 256 bits of entropy, unlike a password.
    return hashlib.sha256(secret.encode()).hexdigest()
