"""ASGI middleware: a bound on request bodies, so an upload cannot exhaust memory, and
PSI requests shed under overload before GraphQL spends anything on them."""

import json
import time
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
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustfabric import psi
from trustfabric.auth import bearer_secret
from trustfabric.errors import AppError, Unavailable
from trustfabric.psi_jobs import check_ids
from trustfabric.schema import metrics

if TYPE_CHECKING:
    from trustfabric.services import Services


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # a chunked body that announced no length
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": {"code": "BAD_USER_INPUT", "message":
                                     f"request body larger than {self.max_bytes} bytes"}})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


class BodyTooLarge(Exception):
    pass


# a `requestPsi(input: $variable)` mutation: the operation, its field, the variable's name
PsiRequest = tuple[OperationDefinitionNode, FieldNode, str] | None


class ShedOverload:
    """Under overload, PSI requests are shed before GraphQL runs.

    Shed by the resolver, a request cost the API process 0.7 ms of CPU (parsing, the
    executor, error formatting), and overload is when most requests are shed: the more it
    refused the fewer jobs it served. Shed here it costs 0.2 ms (`bench/shedding.py`).
    So while the PSI queue is over its budget, a request that is one `requestPsi`
    mutation, valid against the schema, with its input in a variable and a token that may
    write, is decided here by the same rule (`PsiService.shed`) and, if shed, answered
    with the error GraphQL would give. Anything else, and everything while the queue is
    within budget, passes untouched."""

    def __init__(self, app: ASGIApp, schema: GraphQLSchema, max_tokens: int,
                 path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self._schema = schema
        self._max_tokens = max_tokens
        # One entry per distinct query text: clients send the same few again and again.
        self._operation = lru_cache(maxsize=256)(self._psi_request_operation)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        services: Services = scope["state"]["services"]
        if not services.psi.queue.overloaded():
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body = await _read_body(receive)
        refusal = await self._shed(services, Headers(scope=scope), body)
        if refusal is None:
            await self.app(scope, _replay(body, receive), send)
            return
        metrics.record("requestPsi", {"UNAVAILABLE"}, started)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(refusal)),
            (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": refusal})

    async def _shed(self, services: "Services", headers: Headers, body: bytes) -> bytes | None:
        """The shed request's response, or None for GraphQL to answer it."""
        try:
            payload = json.loads(body)
            operation, field, variable = self._operation(payload["query"])
            if payload.get("operationName") not in (None, operation.name and operation.name.value):
                return None
            variables = get_variable_values(self._schema, operation.variable_definitions,
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
            return json.dumps({"data": None, "errors": [error.formatted]}).encode()
        return None

    def _psi_request_operation(self, query: str) -> PsiRequest:
        """The mutation, its one field `requestPsi(input: $variable)` and the variable's
        name; None for any other document (and that is cached too)."""
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError:
            return None
        if validate(self._schema, document) or len(document.definitions) != 1:
            return None
        operation = document.definitions[0]
        if (not isinstance(operation, OperationDefinitionNode)
                or operation.operation is not OperationType.MUTATION
                or len(operation.selection_set.selections) != 1):
            return None
        field = operation.selection_set.selections[0]
        if (not isinstance(field, FieldNode) or field.name.value != "requestPsi"
                or len(field.arguments) != 1
                or not isinstance(field.arguments[0].value, VariableNode)):
            return None
        return operation, field, field.arguments[0].value.name.value


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app behind, which must read the body read here."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
