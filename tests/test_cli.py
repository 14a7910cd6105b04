"""The console command as an operator runs it: `trustfabric serve` on its own embedded
database, stopped the way a service manager stops it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def processes_under(directory: Path) -> list[int]:
    """Processes whose command line names `directory` (the embedded database does)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(directory) in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:  # it ended while we looked
            pass
    return found


def test_serve_stops_its_embedded_database_on_sigterm(tmp_path: Path) -> None:
    port, bolt = free_port(), free_port()
    env = {**os.environ, "TF_DATA_DIR": str(tmp_path), "TF_PORT": str(port),
           "TF_EMBEDDED_BOLT_PORT": str(bolt), "TF_EMBEDDED_HTTP_PORT": str(free_port()),
           "TF_EMBEDDED_HEAP": "512m"}
    env.pop("TF_NEO4J_URI", None)
    serve = subprocess.Popen([str(Path(sys.executable).with_name("trustfabric")), "serve"],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert serve.poll() is None and processes_under(tmp_path)  # serving, database up
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 128 + signal.SIGTERM
        assert processes_under(tmp_path) == []  # the database stopped with it
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", bolt)) != 0
    finally:
        serve.kill()
        for pid in processes_under(tmp_path):
            os.kill(pid, signal.SIGKILL)
