"""Every error leaves with a stable `extensions.code`; nothing unexpected leaves at all."""

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension
from strawberry.relay import GlobalIDValueError

from trustfabric.errors import AppError
from trustfabric.schema.extensions.limits import check_expansion

log = logging.getLogger("trustfabric.graphql")


# graphql-core echoes a rejected variable's value; a value may be a secret (a selector).
_VARIABLE = re.compile(r"^Variable '\$(\w+)'")
_AT_PATH = re.compile(r" at '?\.?([\w.\[\]]+)'?:?")


def _variable_message(message: str) -> str:
    name = _VARIABLE.match(message)
    if name is None or "value" not in message:
        return message
    path = _AT_PATH.search(message)
    where = f" at '{path[1]}'" if path else ""  # the path is the schema's, never input
    return f"Variable '${name[1]}' got an invalid value{where}."


def _coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if error.message.startswith("Variable '$"):
        return GraphQLError(_variable_message(error.message), error.nodes, path=error.path,
                            extensions={"code": "BAD_USER_INPUT"})
    if isinstance(original, GlobalIDValueError):
        # a malformed id is the caller's mistake; its message quotes the id, so not kept
        return GraphQLError("not a global id (the `id` of a node, as this API gives it)",
                            error.nodes, path=error.path, extensions={"code": "BAD_USER_INPUT"})
    if isinstance(original, AppError):
        return GraphQLError(
            original.message, error.nodes, path=error.path,
            extensions={"code": original.code, **original.extensions},
        )
    if isinstance(original, GraphQLError) and "code" in (original.extensions or {}):
        # raised on purpose with its code: a permission class's refusal
        return GraphQLError(original.message, error.nodes, path=error.path,
                            extensions=original.extensions)
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error
        if error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        return GraphQLError(error.message, error.nodes, path=error.path,
                            extensions={**(error.extensions or {}), "code": code})
    # Unexpected: keep the trace in the server log, give the client a code and no detail.
    log.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError("Unexpected error.", error.nodes, path=error.path,
                        extensions={"code": "INTERNAL_SERVER_ERROR"})


def _coded_all(errors: list[GraphQLError]) -> list[GraphQLError]:
    coded = [_coded(e) for e in errors]
    for error in errors:  # logged where it had to be: the traces have served
        _forget_traceback(error)
    return coded


def _forget_traceback(error: BaseException) -> None:
    """A traceback keeps alive the frames it passed through, and they the executor that
    holds the error: a reference cycle a failed request, which only the cyclic garbage
    collector frees (refusals under load made many thousands a second)."""
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()  # causes, contexts and original errors may loop
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += [current.__cause__, current.__context__]
        if isinstance(current, GraphQLError):
            pending.append(current.original_error)


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = _coded_all(result.errors)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """A subscription's results leave one by one, before the operation ends."""
        if result.errors:
            result.errors = _coded_all(result.errors)
        yield


class CodedParserCache(ParserCache):
    """The parser cache, giving syntax errors their code where they are raised: a parse
    error leaves the operation before ErrorCodes sees the result. It also bounds the
    lexical tokens a document may have (graphql-core's parser counts them), which
    Strawberry's MaxTokensLimiter would do as one more extension built for every request,
    and the selections it holds with its fragments spread, before any validation rule."""

    def __init__(self, maxsize: int, max_tokens: int, max_selections: int) -> None:
        super().__init__(maxsize)
        self.max_tokens = max_tokens
        self.max_selections = max_selections

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(
                context.query,
                **{**context.parse_options, "max_lexical_tokens": self.max_tokens},
            )
        except GraphQLError as error:
            raise GraphQLError(error.message, source=error.source, positions=error.positions,
                               extensions={"code": "GRAPHQL_PARSE_FAILED"}) from None
        check_expansion(context.graphql_document, self.max_selections)
        yield
