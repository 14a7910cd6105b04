"""The HTTP protocol every test's server runs on, driven here over a recorded socket: what
leaves, and in how many sends; and the sockets a supervisor hands its workers."""

import asyncio
import io
import os
import pickle
import select
import socket
import time
from multiprocessing.reduction import ForkingPickler
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.server import ServerState

from trustfabric.web.serving import (
    CoalescingTransport,
    HttpProtocol,
    SharedPort,
    reuse_port_socket,
)

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"


class Socket:
    """The socket's transport: one entry a send."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sends.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_extra_info(self, name: str) -> None:
        return None


async def ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def connect() -> tuple[HttpProtocol, Socket]:
    config = Config(app=ok, lifespan="off", log_level="warning", http=HttpProtocol)
    protocol = HttpProtocol(config=config, server_state=ServerState(), app_state={})
    socket = Socket()
    protocol.connection_made(socket)  # type: ignore[arg-type]
    return protocol, socket


async def test_a_response_leaves_in_one_send_after_the_loop_iteration():
    protocol, socket = connect()
    protocol.data_received(REQUEST)
    await asyncio.sleep(0)  # the app writes head and body; nothing is sent yet
    assert socket.sends == []
    await asyncio.sleep(0)
    [sent] = socket.sends
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n") and sent.endswith(b"\r\n\r\nok")
    protocol.data_received(REQUEST)  # keep-alive: the next response, its own send
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(socket.sends) == 2 and socket.sends[1].endswith(b"ok")


async def test_a_client_half_close_does_not_lose_a_held_response():
    protocol, socket = connect()
    protocol.data_received(REQUEST)
    await asyncio.sleep(0)  # written and held
    protocol.eof_received()  # the loop closes the socket's transport right after this
    socket.close()
    [sent] = socket.sends
    assert sent.endswith(b"ok")


async def test_close_sends_what_is_held_first_and_abort_drops_it():
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


async def test_flow_control_sees_what_is_held_and_large_writes_do_not_wait():
    socket = Socket()
    transport = CoalescingTransport(socket)  # type: ignore[arg-type]
    transport.writelines([b"a", b"bc"])
    assert transport.get_write_buffer_size() == 3 and socket.sends == []
    big = b"x" * HIGH_WATER_LIMIT
    transport.write(big)
    assert socket.sends == [b"abc" + big] and transport.get_write_buffer_size() == 0


class WorkerSide(pickle.Unpickler):
    """Unpickles as a spawned worker would, but records the call that would make the
    worker's socket (here it would also tie this process's life to its parent's)."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "worker_listener":
            return lambda *arguments: arguments
        return super().find_class(module, name)


def test_each_worker_listens_on_its_own_socket_and_connections_spread() -> None:
    reserved = SharedPort.reserve("127.0.0.1", 0)
    port = reserved.getsockname()[1]
    # what multiprocessing sends a worker: the call that makes the worker's socket, not
    # the supervisor's socket itself
    sent = WorkerSide(io.BytesIO(bytes(ForkingPickler.dumps(reserved)))).load()
    assert sent == (socket.AF_INET, ("127.0.0.1", port), os.getpid())
    workers = [reuse_port_socket(*sent[:2]) for _ in range(2)]
    clients: list[socket.socket] = []
    try:
        assert len({reserved.fileno(), *(w.fileno() for w in workers)}) == 3
        for worker in workers:
            worker.listen()
        # a client opening its connections at once, as a load generator or a browser does
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        accepted = [0, 0]
        deadline = time.monotonic() + 5
        while sum(accepted) < 32 and time.monotonic() < deadline:
            ready, _, _ = select.select(workers, [], [], 0.1)
            for worker in ready:
                conn, _ = worker.accept()
                conn.close()
                accepted[workers.index(worker)] += 1
        # all of them, and not all on one (a 1 in 2**31 chance with an even spread)
        assert sum(accepted) == 32 and min(accepted) > 0, accepted
    finally:
        for sock in (reserved, *workers, *clients):
            sock.close()


def test_a_port_another_server_listens_on_is_not_shared() -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as our workers bind
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError):
            SharedPort.reserve("127.0.0.1", other.getsockname()[1])
