"""Plain HTTP endpoints beside GraphQL: probes, metrics and CSV exports."""

import enum

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from trustfabric.domain.auth import Caller
from trustfabric.domain.provenance import lineage as domain
from trustfabric.domain.provenance.enums import AnomalyStatus, Severity
from trustfabric.domain.provenance.model import Entity
from trustfabric.errors import AppError, BadUserInput, NotFound, Unavailable
from trustfabric.resolvers.provenance import anomaly_key
from trustfabric.runtime.services import Services

STATUS = {
    "BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
    "QUOTA_EXCEEDED": 429, "UNAVAILABLE": 503,
}
MAX_EXPORT_ROWS = 10_000
EXPORT_PAGE = 500


def _services(request: Request) -> Services:
    services: Services = request.state.services
    return services


def error_response(error: AppError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=STATUS.get(error.code, 500),
    )


async def app_error(request: Request, error: Exception) -> Response:
    """An AppError raised outside GraphQL's own answer (the body of /graphql not JSON)."""
    assert isinstance(error, AppError)  # registered for AppError only
    return error_response(error)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await _services(request).executor.ping()
    except Unavailable:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _caller(request: Request) -> Caller:
    return await _services(request).context(request, None).authenticate()


def _csv(body: str, filename: str) -> Response:
    return PlainTextResponse(
        body, media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


async def export_lineage(request: Request) -> Response:
    """GET /export/lineage.csv?anomaly=<Relay id, or the recorded id>[&tenant=T]"""
    try:
        caller = await _caller(request)
        params = request.query_params
        key = anomaly_key(params.get("anomaly", ""), caller.tenant_for(params.get("tenant")))
        record = await _services(request).repos.lineage.by_anomaly(key, caller.read_scope)
        if record is None:
            raise NotFound("anomaly")
    except AppError as error:
        return error_response(error)
    return _csv(domain.lineage_csv(record), f"lineage-{record.anomaly['anomalyId']}.csv")


def _one_of(params: QueryParams, name: str, values: type[enum.Enum]) -> str | None:
    given = params.get(name)
    if given is not None and given not in values.__members__:
        raise BadUserInput(f"{name} must be one of {', '.join(values.__members__)}")
    return given


async def export_anomalies(request: Request) -> Response:
    """GET /export/anomalies.csv?severity=HIGH&status=OPEN[&tenant=T for operators]"""
    params = request.query_params
    try:
        caller = await _caller(request)
        tenant = caller.tenant_for(params.get("tenant"))
        # an unknown value would match nothing and export an empty file as if none were
        severity = _one_of(params, "severity", Severity)
        status = _one_of(params, "status", AnomalyStatus)
        rows: list[Entity] = []
        after = f"Anomaly:{tenant}:"
        repo = _services(request).repos.provenance
        while len(rows) < MAX_EXPORT_ROWS:
            page = await repo.anomalies_page(tenant, after, EXPORT_PAGE, severity, status)
            rows.extend(page)
            if len(page) < EXPORT_PAGE:
                break
            after = page[-1].key
    except AppError as error:
        return error_response(error)
    return _csv(domain.anomalies_csv(rows[:MAX_EXPORT_ROWS]), f"anomalies-{tenant}.csv")
