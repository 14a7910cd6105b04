"""The HTTP protocol every test's server runs on; here, its transport's contract alone."""

import asyncio

from trustfabric.serving import CoalescingTransport


class Socket:
    """What reaches the socket: one entry a send."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sends.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_writes_in_one_step_leave_in_one_send_after_it():
    socket = Socket()
    transport = CoalescingTransport(socket)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"{}")
    assert socket.sends == []  # nothing until the step ends
    await asyncio.sleep(0)
    assert socket.sends == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert socket.sends[1:] == [b"next"]
    assert transport.get_extra_info("peername") == "info:peername"


async def test_close_sends_what_is_pending_first_and_abort_drops_it():
    socket = Socket()
    transport = CoalescingTransport(socket)  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert socket.sends == [b"last words"] and socket.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left and a closed socket
    assert socket.sends == [b"last words"]

    socket = Socket()
    transport = CoalescingTransport(socket)  # type: ignore[arg-type]
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert socket.sends == [] and socket.aborted
