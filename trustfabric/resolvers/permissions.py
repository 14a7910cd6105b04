"""Who may call a field, declared on the schema: each class authenticates the caller from
the request's token, then checks its role. A refusal carries its code in `extensions`."""

from typing import Any, ClassVar

from strawberry.permission import BasePermission
from strawberry.types import Info

from trustfabric.domain.auth import Role


class Authenticated(BasePermission):
    """Any valid token; a missing, bad or revoked one is refused by `authenticate` with
    UNAUTHENTICATED."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.authenticate()
        return True


class CanWrite(BasePermission):
    """Any role that may change data: auditors' tokens are read-only."""

    message = "auditor tokens are read-only"
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        caller = await info.context.authenticate()
        return caller.role is not Role.AUDITOR


class HasRole(BasePermission):
    """One of `roles`; subclasses name them and say who they are for."""

    roles: ClassVar[frozenset[Role]] = frozenset()
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        caller = await info.context.authenticate()
        return caller.role in self.roles


class IsOperator(HasRole):
    roles = frozenset({Role.OPERATOR})
    message = "only operators may do this"


class IsAuditor(HasRole):
    """Auditors, and operators, who may read everything an auditor reads."""

    roles = frozenset({Role.AUDITOR, Role.OPERATOR})
    message = "audit events are for auditors and operators"
