import base64
import binascii
from typing import Annotated

import strawberry
from strawberry import relay

from trustfabric.domain.ids import IDENT
from trustfabric.domain.provenance.model import Entity, entity_key
from trustfabric.errors import BadUserInput, NotFound
from trustfabric.schema.extensions.limits import MAX_PAGE
from trustfabric.schema.provenance import (
    NODE_TYPES,
    Anomaly,
    AnomalyConnection,
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


async def node(info: Info, id: relay.GlobalID) -> relay.Node:
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


async def anomalies(
    info: Info,
    first: int = 20,
    after: str | None = None,
    severity: Severity | None = None,
    status: AnomalyStatus | None = None,
    tenant: str | None = None,
    anomaly_id: Annotated[str | None, strawberry.argument(
        description="Only the anomaly recorded with this id (as alerts and CSV exports "
                    "show it, e.g. acme-anomaly-0-2-1).")] = None,
) -> AnomalyConnection:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
    scope = info.context.caller.tenant_for(tenant)
    prefix = f"Anomaly:{scope}:"
    after_key = decode_cursor(after, prefix) if after else prefix
    page = await info.context.repos.provenance.anomalies_page(
        scope, after_key, first + 1, severity.value if severity else None,
        status.value if status else None, anomaly_id,
    )
    edges = [relay.Edge(cursor=encode_cursor(e.key), node=Anomaly.from_entity(e))
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

