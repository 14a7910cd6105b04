import base64
import binascii
import json
from typing import Annotated

import strawberry
from strawberry import relay

from trustfabric.domain.ids import IDENT
from trustfabric.domain.provenance.enums import SEVERITY_RANK
from trustfabric.domain.provenance.model import AnomalyCursor, Entity, entity_key
from trustfabric.errors import BadUserInput, NotFound
from trustfabric.schema.extensions.limits import MAX_PAGE
from trustfabric.schema.provenance import (
    NODE_TYPES,
    Anomaly,
    AnomalyConnection,
    AnomalyOrder,
    AnomalyStatus,
    Info,
    Severity,
    to_node,
)


def key_of(node_id: relay.GlobalID, kind: str | None = None) -> str:
    """The entity key a global id names: of a node type the API serves (of `kind`, when
    given); NOT_FOUND otherwise."""
    if node_id.type_name not in NODE_TYPES or kind not in (None, node_id.type_name):
        raise NotFound(f"node {node_id}")
    return f"{node_id.type_name}:{node_id.node_id}"


async def load_entity(info: Info, node_id: relay.GlobalID, kind: str | None = None) -> Entity:
    """The entity behind a global id, within the caller's reach; NOT_FOUND otherwise."""
    if kind is not None and node_id.type_name != kind:
        raise BadUserInput(f"expected the id of a {kind}")
    entity = await info.context.loaders.provenance.entities.load(key_of(node_id))
    if entity is None:
        raise NotFound(f"node {node_id}")
    return entity


def anomaly_key(given: str, tenant: str) -> str:
    """The key of the anomaly `given` names: its Relay id, or the id it was recorded with
    (what alerts and CSV exports show), taken in `tenant`. Readable ids hold no ':' and a
    Relay id decodes to one, so the two cannot be taken for each other."""
    try:
        global_id: relay.GlobalID | None = relay.GlobalID.from_id(given)
    except ValueError:
        global_id = None
    if global_id is not None and global_id.type_name == "Anomaly":
        return f"Anomaly:{global_id.node_id}"
    if IDENT.fullmatch(given):
        return entity_key("Anomaly", tenant, given)
    raise BadUserInput("anomalyId must be an Anomaly's id or the id it was recorded with")


async def node(
    info: Info,
    id: Annotated[relay.GlobalID, strawberry.argument(
        description="The node's Relay id, as any node's `id` field gives it.")],
) -> relay.Node:
    return to_node(await load_entity(info, id))


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_cursor(cursor: str, prefix: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadUserInput("malformed cursor") from None
    if not key.startswith(prefix):
        raise BadUserInput("cursor does not belong to this listing")
    return key


def _anomaly_cursor(order: AnomalyOrder, entity: Entity) -> str:
    rank = SEVERITY_RANK[Severity(entity["severity"])] if order is AnomalyOrder.SEVERITY else 0
    return encode_cursor(json.dumps([order.value, rank, entity["observedAt"] or "", entity.key]))


def _after(cursor: str, order: AnomalyOrder, prefix: str) -> AnomalyCursor:
    """The row a cursor names; it must come from the same listing, in the same order."""
    try:
        named, rank, at, key = json.loads(decode_cursor(cursor, "["))
    except ValueError:
        raise BadUserInput("malformed cursor") from None
    if (named != order.value or not isinstance(rank, int) or not isinstance(at, str)
            or not isinstance(key, str) or not key.startswith(prefix)):
        raise BadUserInput("cursor does not belong to this listing")
    return AnomalyCursor(rank, at, key)


async def anomalies(
    info: Info,
    first: Annotated[int, strawberry.argument(
        description="How many to return, 1 to 100.")] = 20,
    after: Annotated[str | None, strawberry.argument(
        description="The endCursor of the previous page, asked in the same order; null for "
                    "the first page.")] = None,
    severity: Annotated[Severity | None, strawberry.argument(
        description="Only anomalies of this severity.")] = None,
    status: Annotated[AnomalyStatus | None, strawberry.argument(
        description="Only anomalies in this status.")] = None,
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: whose anomalies (default: the caller's own tenant).")] = None,
    anomaly_id: Annotated[str | None, strawberry.argument(
        description="Only the anomaly recorded with this id (as alerts and CSV exports "
                    "show it, e.g. acme-anomaly-0-2-1).")] = None,
    order: Annotated[AnomalyOrder | None, strawberry.argument(
        description="NEWEST (default): latest observed first, never observed last; "
                    "SEVERITY: most severe first, then newest.")] = AnomalyOrder.NEWEST,
) -> AnomalyConnection:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
    order = order or AnomalyOrder.NEWEST  # null, as a variable left unset, is the default
    scope = info.context.caller.tenant_for(tenant)
    resume = _after(after, order, f"Anomaly:{scope}:") if after else None
    page = await info.context.repos.provenance.anomalies_ordered(
        scope, order, resume, first + 1, severity.value if severity else None,
        status.value if status else None, anomaly_id,
    )
    edges = [relay.Edge(cursor=_anomaly_cursor(order, e), node=Anomaly.from_entity(e))
             for e in page[:first]]
    return AnomalyConnection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=len(page) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )

