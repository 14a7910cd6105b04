"""ASGI middleware: a bound on request bodies, so an upload cannot exhaust memory, and
PSI requests shed under overload before GraphQL spends anything on them."""

import json
import logging
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.validation import ASTValidationRule
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustfabric.domain.auth import bearer_secret
from trustfabric.domain.ids import check_ids
from trustfabric.domain.psi import protocol as psi
from trustfabric.errors import AppError, Unavailable
from trustfabric.schema.extensions import metrics

if TYPE_CHECKING:
    from trustfabric.runtime.services import Services


class BodyLimit:
    """Bodies up to `max_bytes`, and up to `max_anonymous_bytes` without a token that
    verifies: lexing a 15 MB string literal held the event loop for 3 s, so what anyone
    may send before authentication is kept small (only uploads and ingests are large, and
    they need a token anyway)."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_anonymous_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_anonymous_bytes = min(max_anonymous_bytes, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, self.max_bytes)
            return
        limit = self.max_anonymous_bytes
        if declared is not None and declared > limit:
            if not await self._authenticated(scope):
                await self._refuse(send, limit)
                return
            limit = self.max_bytes
        seen = 0

        async def counted() -> Message:
            nonlocal seen, limit
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # a chunked body that announced no length
                if limit < self.max_bytes and await self._authenticated(scope):
                    limit = self.max_bytes
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge as error:
            await self._refuse(send, error.args[0])

    async def _authenticated(self, scope: Scope) -> bool:
        services: Services = scope["state"]["services"]
        try:
            await services.repos.tokens.verify(
                bearer_secret(Headers(scope=scope).get("authorization", "")))
        except AppError:
            return False
        return True

    async def _refuse(self, send: Send, limit: int) -> None:
        if limit < self.max_bytes:
            status, code = 401, "UNAUTHENTICATED"
            message = f"a request body over {limit} bytes needs a valid bearer token"
        else:
            status, code = 413, "BAD_USER_INPUT"
            message = f"request body larger than {limit} bytes"
        body = json.dumps({"error": {"code": code, "message": message}})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


class BodyTooLarge(Exception):
    pass


# a `requestPsi(input: $variable)` mutation: the operation, its field, the variable's name
PsiRequest = tuple[OperationDefinitionNode, FieldNode, str] | None
# A PSI request's query text is a line or two; longer ones are left to GraphQL, so that
# the cache of documents seen here cannot be filled with large ones.
MAX_QUERY_CHARS = 8192
log = logging.getLogger("trustfabric.shedding")


class ShedOverload:
    """Under overload, PSI requests are shed before GraphQL runs.

    Shed here, a refusal costs far less than through GraphQL (decision 0013).
    So while the PSI queue is over its budget, a JSON request that is one `requestPsi`
    mutation, valid against the schema and its rules, without directives, with its input
    in a variable and a token that may write, is decided here by the same rule
    (`PsiService.shed`) and, if shed, answered with the body GraphQL would give, and a
    Retry-After header. Anything else, and everything while the queue is within budget,
    goes on to GraphQL as it came."""

    def __init__(self, app: ASGIApp, schema: GraphQLSchema,
                 rules: Sequence[type[ASTValidationRule]], max_tokens: int,
                 path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self._schema = schema
        self._rules = rules
        self._max_tokens = max_tokens
        # One entry per distinct query text: clients send the same few again and again.
        self._operation = lru_cache(maxsize=256)(self._psi_request_operation)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        services: Services = scope["state"]["services"]
        headers = Headers(scope=scope)
        if (not services.load.overloaded()
                or "application/json" not in headers.get("content-type", "").lower()):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = await _read_body(receive)
        if body is None:  # the client left: nobody to answer
            return
        try:
            refusal = await self._shed(services, headers, body)
        except Exception as error:  # noqa: BLE001 - GraphQL answers it, and reports faults
            # the type only: a message may quote the request
            log.warning("shedding: %s; left to GraphQL", type(error).__name__)
            refusal = None
        if refusal is None:
            await self.app(scope, _replay(body, receive), send)
            return
        answer, retry_after = refusal
        metrics.record("requestPsi", "refused", started)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer)),
            (b"retry-after", str(retry_after).encode())]})
        await send({"type": "http.response.body", "body": answer})

    async def _shed(self, services: "Services", headers: Headers, body: bytes
                    ) -> tuple[bytes, object] | None:
        """The shed request's body and Retry-After, or None for GraphQL to answer it."""
        if b"requestPsi" not in body:  # before decoding: an upload may be megabytes
            return None
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict) or not all(
                    isinstance(payload.get(key), kind | None)
                    for key, kind in (("query", str), ("operationName", str),
                                      ("variables", dict), ("extensions", dict))):
                return None  # GraphQL says what is wrong with it
            query = payload.get("query") or ""
            request = self._operation(query) if len(query) <= MAX_QUERY_CHARS else None
            if request is None:
                return None
            operation, field, variable = request
            if payload.get("operationName") not in (None, operation.name and operation.name.value):
                return None
            # the parser always gives a tuple; the AST's types allow None
            variables = get_variable_values(self._schema, operation.variable_definitions or (),
                                            payload.get("variables") or {})
            if isinstance(variables, list):  # invalid: GraphQL says how
                return None
            given = variables.coerced[variable]
            dataset_id, mode = given["datasetId"], psi.Mode(given["mode"])
            check_ids(dataset_id, given["idempotencyKey"])
            caller = await services.repos.tokens.verify(
                bearer_secret(headers.get("authorization", "")))
            caller.require_write()
        except (AppError, ValueError, KeyError, TypeError):
            return None  # what GraphQL or the resolver would refuse, they refuse
        try:
            services.psi.shed(caller, dataset_id, mode)
        except Unavailable as shed:
            key = (field.alias or field.name).value
            error = GraphQLError(shed.message, [field], path=[key],
                                 extensions={"code": shed.code, **shed.extensions})
            answer = json.dumps({"data": None, "errors": [error.formatted]}).encode()
            return answer, shed.extensions.get("retryAfterSeconds", 1)
        return None

    def _psi_request_operation(self, query: str) -> PsiRequest:
        """The mutation, its one field `requestPsi(input: $variable)` and the variable's
        name; None for any other document (and that is cached too)."""
        try:
            document = parse(query, max_lexical_tokens=self._max_tokens)
        except GraphQLError:
            return None
        if len(document.definitions) != 1 or validate(self._schema, document, self._rules):
            return None
        operation = document.definitions[0]
        if (not isinstance(operation, OperationDefinitionNode)
                or operation.operation is not OperationType.MUTATION
                or operation.directives
                or len(operation.selection_set.selections) != 1):
            return None
        field = operation.selection_set.selections[0]
        if not isinstance(field, FieldNode):
            return None
        arguments = field.arguments or ()  # as above: a tuple from the parser, None in the types
        if (field.name.value != "requestPsi"
                or field.directives  # @skip, @include: GraphQL decides
                or len(arguments) != 1
                or not isinstance(arguments[0].value, VariableNode)):
            return None
        return operation, field, arguments[0].value.name.value


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app behind, which must read the body read here."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
