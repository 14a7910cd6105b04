"""Every error leaves with a stable `extensions.code`; nothing unexpected leaves at all."""

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.types import Info

from trustfabric.errors import AppError

log = logging.getLogger("trustfabric.graphql")


def _coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, AppError):
        return GraphQLError(
            original.message, error.nodes, path=error.path,
            extensions={"code": original.code, **original.extensions},
        )
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error
        if error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable '$"):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return GraphQLError(error.message, error.nodes, path=error.path,
                            extensions={**(error.extensions or {}), "code": code})
    # Unexpected: keep the trace in the server log, give the client a code and no detail.
    log.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError("Unexpected error.", error.nodes, path=error.path,
                        extensions={"code": "INTERNAL_SERVER_ERROR"})


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_coded(e) for e in result.errors]


class Authenticated(BasePermission):
    """Resolves the caller from the bearer token; the code comes from the raised AppError."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.authenticate()
        return True


class CanWrite(BasePermission):
    message = "this token may not write"
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        caller = await info.context.authenticate()
        caller.require_write()
        return True
