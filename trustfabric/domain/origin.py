"""Who a database statement is for, so metrics tell request work from background work."""

from contextvars import ContextVar

# "request" unless a background loop (worker, pollers) or a token lookup says otherwise.
ORIGIN: ContextVar[str] = ContextVar("graph_origin", default="request")
