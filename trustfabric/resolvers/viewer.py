from trustfabric.schema.provenance import Info
from trustfabric.schema.viewer import Viewer


def viewer(info: Info) -> Viewer:
    caller = info.context.caller
    return Viewer(tenant=caller.tenant, role=caller.role.value)
