"""How the API is served: uvicorn, with its workers each listening on a socket of its own, and
its httptools protocol, with what one iteration of the event loop writes sent at once.

uvicorn's workers share one listening socket, and a worker woken by new connections
accepts every one queued: a client opening its 16 keep-alive connections at once had all
16 on one worker while the other idled (decision 0025). With SO_REUSEPORT each worker has
its own listening socket on the port, and the kernel spreads connections across them.

uvicorn sends head and body apart; each loopback send wakes the receiver (decision 0016).
Writes to a connection in one iteration are held and leave together in a callback of the
next (after that iteration's reads): a response is one send, and so are the frames a
subscriber is sent in one iteration.

`run` serves with both; `trustfabric serve` calls it.
"""

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("uvicorn.error")  # where uvicorn says where it listens
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, factory=True, ...)`; with more than one worker, uvicorn's own
    supervisor (restarts, signals, health checks) runs them, each on its own socket."""
    if workers <= 1:
        uvicorn.run(app, factory=True, host=host, port=port, http=HttpProtocol, **options)
        return
    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=workers,
                            http=HttpProtocol, **options)
    try:
        port_in_use = SharedPort.reserve(host, port)
    except OSError as error:  # as uvicorn fails on a port it cannot bind
        log.error("cannot serve on %s:%d: %s", host, port, error)
        sys.exit(STARTUP_FAILURE)
    log.info("Uvicorn running on http://%s:%d with %d workers, each on its own socket "
             "(Press CTRL+C to quit)", host, port, workers)
    before = signal.getsignal(signal.SIGTERM)
    try:
        supervisor = Supervisor(config, sockets=[port_in_use])
        supervisor.run()
    finally:
        signal.signal(signal.SIGTERM, before)
        port_in_use.close()
    # one uvicorn server raises the SIGTERM that stopped it again once stopped, for the
    # handler its caller had (`serve` ends with 143 then): so does the supervisor here
    if supervisor.terminated:
        signal.raise_signal(signal.SIGTERM)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, remembering whether SIGTERM stopped it."""

    terminated = False

    def handle_term(self) -> None:
        self.terminated = True
        super().handle_term()


def reuse_port_socket(family: int, address: tuple[Any, ...]) -> socket.socket:
    """A socket bound to `address` that other sockets of this user may bind too, the kernel
    spreading connections over those that listen; SO_REUSEADDR as uvicorn sets it, so a
    restart binds while the last run's connections are in TIME_WAIT."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


class SharedPort(socket.socket):
    """The port the workers share, as the supervisor holds it: bound, never listening (so
    the kernel gives it no connections). Pickled to a worker as it is spawned, it arrives
    as that worker's own listening socket on the port (`worker_listener`): each worker, and
    each replacement of one, joins the port's group with a socket of its own."""

    @classmethod
    def reserve(cls, host: str, port: int) -> "SharedPort":
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # SO_REUSEPORT would let this bind beside another `serve` of the same user on the
        # port, which would then take half its connections: a plain bind first is refused
        # while anything listens there
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        held = reuse_port_socket(family, (host, port))
        return cls(family, socket.SOCK_STREAM, fileno=held.detach())

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[Any, ...]]:
        return worker_listener, (self.family, self.getsockname(), os.getpid())


def worker_listener(family: int, address: tuple[Any, ...], supervisor: int) -> socket.socket:
    """Runs inside a newly spawned worker, as it unpickles its arguments, before uvicorn
    starts there: the worker's own socket on the shared port. It also has the worker ended
    with its supervisor, even one killed with SIGKILL: left running, the worker would keep
    its socket in the port's group and take connections beside a `serve` started again."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != supervisor:  # it ended before the call above
        os.kill(os.getpid(), signal.SIGTERM)
    try:
        return reuse_port_socket(family, address)
    except OSError as error:
        # something else took the port while no worker listened: failing as a worker that
        # cannot start stops the supervisor, rather than it spawning workers for ever
        log.error("cannot serve on %s: %s", address, error)
        sys.exit(STARTUP_FAILURE)


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
