"""The ASGI application, declared: routes, middleware and the resources' lifespan."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from graphql import specified_rules
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from trustfabric.context import Context
from trustfabric.errors import AppError, BadUserInput
from trustfabric.runtime.services import Services
from trustfabric.schema import build_schema, validation_rules
from trustfabric.settings import Settings, get_settings
from trustfabric.web import pages
from trustfabric.web import routes as http
from trustfabric.web.middleware import BodyLimit, ShedOverload


class GraphQLApp(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        services: Services = request.state.services
        return services.context(request, response)

    async def render_graphql_ide(self, request: Request) -> Response:
        return pages.graphiql()

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except RecursionError:  # 50,000 `[`: deeper than the decoder goes, so not JSON here
            raise json.JSONDecodeError("nested too deeply", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        """A body that is not JSON is answered like any other mistake: 400 with a code."""
        try:
            return self.decode_json(data)
        except json.JSONDecodeError:
            raise BadUserInput("the request body is not JSON, or nests too deeply") from None


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        services = Services.open(settings, with_worker=settings.psi_worker_in_process)
        background = services.start_background()
        try:
            yield {"services": services}
        finally:
            await background.stop()
            await services.close()

    schema = build_schema(settings)
    graphql = GraphQLApp(
        schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=False,
    )
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", http.healthz),
            Route("/readyz", http.readyz),
            Route("/metrics", http.metrics),
            Route("/export/lineage.csv", http.export_lineage),
            Route("/export/anomalies.csv", http.export_anomalies),
            Route("/", pages.home),
            Route("/explorer", pages.explorer),
            Mount("/static", pages.static_files(), name="static"),
        ],
        middleware=[
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       max_anonymous_bytes=settings.max_anonymous_body_bytes),
            Middleware(ShedOverload, schema=schema._schema,
                       rules=[*specified_rules, *validation_rules(settings)],
                       max_tokens=settings.max_tokens),
        ],
        exception_handlers={AppError: http.app_error},
        lifespan=lifespan,
    )
