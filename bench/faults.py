"""A fault-injecting TCP proxy for loopback: put it between the service and its database
and switch, while it runs, added latency with jitter, reset connections (live ones, and
new ones as they arrive) and a partition (nothing flows either way until it ends).

    python -m bench.faults --listen 7688 --upstream 127.0.0.1:7687 --control 7689

The control port takes one JSON object a line: the faults to apply from now on (fields of
`Faults`; `{}` switches every fault off, `{"stats": true}` changes nothing) and answers
with the faults in force and the proxy's counters. `set_faults` is its client.
"""

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

CHUNK = 65536
TICK_S = 0.2  # how often live connections are considered for a reset


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0  # added to every chunk, each direction
    jitter_ms: float = 0.0  # ± uniformly on top (order within a connection is kept)
    reset_per_s: float = 0.0  # each live connection's chance a second of being reset
    refuse: float = 0.0  # a new connection's chance of being reset at once
    partition: bool = False  # nothing flows; new connections wait too

    @classmethod
    def of(cls, values: dict[str, Any]) -> "Faults":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        return cls(**values)


@dataclass
class Stats:
    connections: int = 0
    live: int = 0
    resets: int = 0
    refused: int = 0
    bytes: int = 0


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ended: int = 0  # directions that reached their end


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST (linger 0), as a peer whose connection was reset sees it."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forwards every connection to `upstream`, with the faults in force (`set`)."""

    def __init__(self, upstream_host: str, upstream_port: int, seed: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults = Faults()
        self.stats = Stats()
        self._random = random.Random(seed)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    def set(self, faults: Faults) -> None:
        self.faults = faults
        if faults.partition:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        self._ticker = asyncio.create_task(self._resets())
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._server:
            self._server.close()
        for link in list(self._links):
            self._drop(link, reset=False)
        if self._server:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _drop(self, link: _Link, reset: bool) -> None:
        if link not in self._links:
            return
        self._links.discard(link)
        self.stats.live = len(self._links)
        for task in link.tasks:
            task.cancel()
        for writer in (link.client, link.upstream):
            if writer is None:
                continue
            if reset:
                _reset(writer)
            else:
                writer.close()

    async def _resets(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            chance = self.faults.reset_per_s * TICK_S
            if chance <= 0:
                continue
            for link in list(self._links):
                if self._random.random() < chance:
                    self.stats.resets += 1
                    self._drop(link, reset=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self._random.random() < self.faults.refuse:
            self.stats.refused += 1
            _reset(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        self.stats.live = len(self._links)
        try:
            await self._flowing.wait()  # a partition holds the connection's opening too
            up_reader, link.upstream = await asyncio.open_connection(*self.upstream)
        except (OSError, asyncio.CancelledError):
            self._drop(link, reset=True)
            return
        if link not in self._links:  # reset while it waited
            link.upstream.close()
            return
        link.tasks = [asyncio.create_task(self._pump(reader, link.upstream, link)),
                      asyncio.create_task(self._pump(up_reader, writer, link))]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    link: _Link) -> None:
        """Copies one direction; with latency, a queue delivers each chunk at its time,
        never before the one read before it."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(queue, writer))
        last = 0.0
        try:
            while data := await reader.read(CHUNK):
                faults = self.faults
                delay = faults.latency_ms + self._random.uniform(-1, 1) * faults.jitter_ms
                last = max(last, time.monotonic() + max(delay, 0.0) / 1000)
                queue.put_nowait((last, data))
            await queue.join()
            if writer.can_write_eof():
                writer.write_eof()
            link.ended += 1
            if link.ended == 2:
                self._drop(link, reset=False)
        except (OSError, asyncio.IncompleteReadError):
            self._drop(link, reset=True)
        finally:
            deliver.cancel()

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes]],
                       writer: asyncio.StreamWriter) -> None:
        while True:
            at, data = await queue.get()
            try:
                if (wait := at - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
                self.stats.bytes += len(data)
            except OSError:
                pass
            finally:
                queue.task_done()


async def serve_control(proxy: FaultProxy, host: str, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not request.pop("stats", False):
                        proxy.set(Faults.of(request))
                    answer = {"ok": True, "faults": asdict(proxy.faults),
                              "stats": asdict(proxy.stats)}
                except (ValueError, TypeError) as error:
                    answer = {"ok": False, "error": str(error)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port)


async def set_faults(control_port: int, faults: Faults | None = None,
                     timeout: float = 5.0) -> dict[str, Any]:
    """Applies `faults` (None: only reads the counters) at the proxy's control port."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", control_port), timeout)
    try:
        request = asdict(faults) if faults is not None else {"stats": True}
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), timeout))
    finally:
        writer.close()
    if not answer.get("ok"):
        raise RuntimeError(f"the proxy refused the faults: {answer.get('error')}")
    return answer


async def _main(args: argparse.Namespace) -> None:
    host, port = args.upstream.rsplit(":", 1)
    proxy = FaultProxy(host, int(port), args.seed)
    listening = await proxy.start("127.0.0.1", args.listen)
    control = await serve_control(proxy, "127.0.0.1", args.control)
    print(f"proxy 127.0.0.1:{listening} -> {args.upstream}, control 127.0.0.1:{args.control}",
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        control.close()
        await proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--control", type=int, required=True, help="control port on 127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop

            uvloop.run(_main(args))
        except ImportError:
            asyncio.run(_main(args))


if __name__ == "__main__":
    main()
