"""uvicorn's httptools protocol, with what one iteration of the event loop writes sent at once.

uvicorn sends head and body apart; each loopback send wakes the receiver (decision 0016).
Writes to a connection in one iteration are held and leave together in a callback of the
next (after that iteration's reads): a response is one send, and so are the frames a
subscriber is sent in one iteration.

Serve with `--http trustfabric.web.serving:HttpProtocol` (the uvicorn CLI takes an import
string) or `uvicorn.run(..., http=HttpProtocol)`.
"""

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes are held until the loop's current iteration ends, or until
    they reach the high-water mark (what is held counts in the write buffer's size, so flow
    control sees it). Close and write_eof send what is held first; abort drops it. Every
    other call goes to the socket's transport."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes > HIGH_WATER_LIMIT:
            self.flush()

    def writelines(self, lines: Iterable[bytes]) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if pending and not self._transport.is_closing():
            self._transport.write(b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._pending_bytes + self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending, self._pending_bytes = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A websocket upgrade hands this same transport to the websocket protocol.
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]

    def eof_received(self) -> None:
        # A client that half-closes after its request: returning None here makes the loop
        # close the socket's transport itself, past the wrapper, so what is held goes first.
        self.transport.flush()  # type: ignore[attr-defined]
