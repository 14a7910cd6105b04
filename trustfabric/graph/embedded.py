"""Start and stop the embedded ArcadeDB server as a child process on 127.0.0.1."""

import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trustfabric.errors import Unavailable

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
# Sizing from the machine (docs/operations.md#sizing-the-embedded-database, decision 0022):
# a quarter of its memory as the heap, within these bounds, two thirds of it as page cache
HEAP_SHARE = 0.25
# (the soaks measured up to 6 GB: a larger heap is unmeasured)
MIN_HEAP_MB, MAX_HEAP_MB = 512, 8192
PAGE_CACHE_SHARE = 2 / 3
# Where the machine's memory is not known (no /proc): the heap of the earlier default
FALLBACK_HEAP_MB = 2048


def machine_memory_mb(meminfo: Path = Path("/proc/meminfo"),
                      cgroup: Path = Path("/sys/fs/cgroup/memory.max")) -> int | None:
    """The memory this process may use, in MB: the machine's (`MemTotal`), or its control
    group's limit where that is lower (a container); None where neither can be read."""
    total = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) // 1024  # kB
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = cgroup.read_text().strip()
        if limit.isdigit():
            total = min(total or int(limit) // 2**20, int(limit) // 2**20)
    except OSError:
        pass
    return total


def megabytes(size: str) -> int:
    """A JVM size (`2g`, `1536m`, `524288k`) in MB."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    size = size.strip().lower()
    if size and size[-1] in units:
        return int(float(size[:-1]) * units[size[-1]])
    return int(size) // 2**20  # bytes


def sized(memory_mb: int | None, heap: str | None = None,
          page_cache_mb: int | None = None) -> tuple[str, int]:
    """The embedded database's heap and page cache (MB): what was set, or sized from the
    machine's memory. Unset, the heap is a quarter of the memory (512 MB to 8 GB; 2 GB
    when the memory is not known) and the page cache two thirds of the heap (0 keeps
    ArcadeDB's own quarter)."""
    if heap is None:
        heap_mb = FALLBACK_HEAP_MB if memory_mb is None else int(
            min(max(memory_mb * HEAP_SHARE, MIN_HEAP_MB), MAX_HEAP_MB))
        heap = f"{heap_mb}m"
    if page_cache_mb is None:
        page_cache_mb = int(megabytes(heap) * PAGE_CACHE_SHARE)
    return heap, page_cache_mb


def _read_or_create_password(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return password


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class Ready:
    """What a running server's ready file says: its process, the process that started it,
    and where it listens (other commands find its Bolt port here)."""

    pid: int
    parent: int
    bolt_port: int
    http_port: int

    @property
    def orphaned(self) -> bool:
        """Its parent is no longer the process that started it (that one died): it stops
        itself within a second or so."""
        try:
            # the 4th field of /proc/PID/stat, after the parenthesised command name
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            return int(stat.rsplit(")", 1)[1].split()[1]) != self.parent
        except (OSError, ValueError, IndexError):
            return False


def read_ready(data_dir: Path) -> Ready | None:
    """The ready file of the server running `data_dir`'s database, if its process is alive
    and is that server (Linux: read through /proc)."""
    data_dir = data_dir.resolve()
    try:
        ready = Ready(**json.loads((data_dir / "embedded.ready").read_text()))
        command = Path(f"/proc/{ready.pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, TypeError):  # none started, stopped since, or not Linux
        return None
    ours = (b"trustfabric.graph.embedded_server" in command
            and str(data_dir).encode() in command)
    return ready if ours else None


def _owner_only(root: Path) -> None:
    """Files under `root` made 0600 and directories 0700 (earlier versions left them
    0644 and 0755): what the owner could read and write, nobody else can."""
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            os.chmod(os.path.join(directory, name), 0o700)
        for name in files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, stat.S_IMODE(mode) & 0o700)


class EmbeddedServer:
    """One ArcadeDB server whose data lives under `data_dir`.

    `start()` blocks until Bolt accepts connections; `stop()` asks the server to shut down
    cleanly and waits for it. Both may be called repeatedly (tests stop and restart it).
    """

    def __init__(
        self,
        data_dir: Path,
        database: str,
        bolt_port: int,
        http_port: int,
        heap: str = "2g",
        wal_flush: int = 1,
        page_cache_mb: int = 0,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self.bolt_port = bolt_port
        self.http_port = http_port
        self.heap = heap
        self.wal_flush = wal_flush
        self.page_cache_mb = page_cache_mb
        # Its files hold webhook endpoints, partner datasets and tokens' hashes: the owner's
        # alone (0700; the server's files 0600, from its umask), an older one's tightened.
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        self.password = _read_or_create_password(self.data_dir / "bolt-password")
        self._process: subprocess.Popen[str] | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def owner(self) -> int | None:
        """The process running this data directory's server when another process started
        it: its ready file names a live server process for this directory (Linux)."""
        ready = read_ready(self.data_dir)
        return ready.pid if ready is not None and ready.pid != self.pid else None

    def wait_for_orphan(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Waits while this directory's server is an orphan stopping itself: the process
        that started it was killed (SIGKILL), so a restart right after is not refused."""
        deadline = time.monotonic() + timeout_s
        while (ready := read_ready(self.data_dir)) is not None and ready.orphaned:
            if time.monotonic() > deadline:
                raise Unavailable(f"the orphaned embedded database (process {ready.pid}) "
                                  "did not stop in time")
            time.sleep(0.2)

    def start(self) -> None:
        if self.running:
            return
        if port_open(self.bolt_port):
            raise Unavailable(f"port {self.bolt_port} is already in use")
        ready = self.data_dir / "embedded.ready"
        ready.unlink(missing_ok=True)
        _owner_only(self.data_dir)
        log = os.fdopen(os.open(self.data_dir / "arcadedb.out",  # owned by the child
                                os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a")
        self._process = subprocess.Popen(
            [
                sys.executable, "-m", "trustfabric.graph.embedded_server",
                "--root", str(self.data_dir),
                "--database", self.database,
                "--bolt-port", str(self.bolt_port),
                "--http-port", str(self.http_port),
                "--heap", self.heap,
                "--wal-flush", str(self.wal_flush),
                "--page-cache-mb", str(self.page_cache_mb),
                "--ready-file", str(ready),
            ],
            cwd=self.data_dir,  # ArcadeDB writes ./log relative to its working directory
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group: a ^C meant for the API must not kill the JVM mid-write.
            start_new_session=True,
            umask=0o077,  # every file and directory the database makes: the owner's alone
        )
        log.close()
        assert self._process.stdin is not None
        self._process.stdin.write(self.password + "\n")
        self._process.stdin.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        try:
            while not ready.exists():
                if self._process.poll() is not None:
                    raise Unavailable(
                        f"embedded database exited; see {self.data_dir / 'arcadedb.out'}")
                if time.monotonic() > deadline:
                    raise Unavailable("embedded database did not start in time")
                time.sleep(0.2)
        except BaseException:  # a stop request while it starts stops it too
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "EmbeddedServer":
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
