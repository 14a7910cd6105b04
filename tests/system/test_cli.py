"""The console command as an operator runs it: `trustfabric serve` on its own embedded
database, stopped the way a service manager stops it; `rotate-psi-key`."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from bench.common import api_workers, ended
from tests.helpers import free_port, healthy, until


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


def listeners(port: int) -> int:
    """Sockets listening on `port` (state 0A in /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows
               if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


async def test_commands_share_the_database_serve_runs_and_sigterm_stops_it(tmp_path: Path
                                                                          ) -> None:
    port, bolt = free_port(), free_port()
    env = {**os.environ, "TF_DATA_DIR": str(tmp_path), "TF_PORT": str(port),
           "TF_EMBEDDED_BOLT_PORT": str(bolt), "TF_EMBEDDED_HTTP_PORT": str(free_port()),
           "TF_EMBEDDED_HEAP": "512m"}
    env.pop("TF_NEO4J_URI", None)
    command = str(Path(sys.executable).with_name("trustfabric"))
    serve = subprocess.Popen([command, "serve", "--workers", "2"],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        healthy(serve, port, 120)
        assert serve.poll() is None and processes_under(tmp_path)  # serving, database up
        # each worker on a socket of its own, so the kernel spreads connections over them
        # (the first to start answered; the other may be starting)
        await until(lambda: listeners(port) == 2, seconds=60, what="two listening workers")
        # an operator's command while it serves uses its database, and leaves it running
        token = subprocess.run([command, "token", "create", "--tenant", "acme", "--role",
                                "member"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=120)
        assert token.returncode == 0 and "tf_" in token.stdout, token.stderr[-500:]
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        # a second `serve` of the same data would stop the database under the first: refused
        second = subprocess.run([command, "serve"], cwd=tmp_path, timeout=120, text=True,
                                env={**env, "TF_PORT": str(free_port())}, capture_output=True)
        assert second.returncode == 1 and "stop it first" in second.stderr
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 128 + signal.SIGTERM
        assert processes_under(tmp_path) == []  # the database stopped with it
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", bolt)) != 0
    finally:
        serve.kill()
        for pid in processes_under(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_key_rotation_keeps_the_old_key_and_changes_the_id(tmp_path):
    env = {**os.environ, "TF_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "trustfabric.cli", "rotate-psi-key"]
    rotations = []
    for _ in range(2):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        rotations.append(re.search(r"rotated: (\w+) → (\w+)", result.stdout).groups())
    (first_old, first_new), (second_old, second_new) = rotations
    assert first_new == second_old and len({first_old, first_new, second_new}) == 3
    keys = tmp_path / "keys"
    assert sorted(p.name for p in keys.iterdir()) == sorted(
        ["psi-server.key", f"psi-server.{first_old}.retired", f"psi-server.{second_old}.retired"])
    assert oct((keys / "psi-server.key").stat().st_mode)[-3:] == "600"


def serving(command: str, env: dict[str, str], cwd: Path, *options: str
            ) -> subprocess.Popen[bytes]:
    """`trustfabric serve` started, once it answers /healthz (at most two minutes)."""
    serve = subprocess.Popen([command, "serve", *options], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if healthy(serve, env["TF_PORT"], 120):
        return serve
    serve.kill()
    raise AssertionError(f"serve did not answer /healthz (exit {serve.poll()})")


async def test_serve_starts_again_after_sigkill_and_keeps_what_was_committed(tmp_path: Path
                                                                             ) -> None:
    """A supervisor restarting a `serve` killed with SIGKILL: its database and its workers
    stop with it, cleanly, and the next `serve` starts on the same data, a token issued
    before intact."""
    env = {**os.environ, "TF_DATA_DIR": str(tmp_path), "TF_PORT": str(free_port()),
           "TF_EMBEDDED_BOLT_PORT": str(free_port()),
           "TF_EMBEDDED_HTTP_PORT": str(free_port()), "TF_EMBEDDED_HEAP": "512m"}
    env.pop("TF_NEO4J_URI", None)
    command = str(Path(sys.executable).with_name("trustfabric"))
    port = int(env["TF_PORT"])
    serve = serving(command, env, tmp_path, "--workers", "2")
    try:
        token = subprocess.run([command, "token", "create", "--tenant", "acme"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=120)
        secret = re.search(r"token: (tf_\S+)", token.stdout).group(1)
        await until(lambda: listeners(port) == 2, seconds=60, what="two listening workers")
        workers = api_workers(serve.pid)
        serve.kill()
        serve.wait(10)
        # no worker left, to take connections beside the next serve's
        assert len(workers) == 2
        await until(lambda: all(map(ended, workers)), seconds=60, what="the workers' end")
        assert listeners(port) == 0
        serve = serving(command, env, tmp_path)  # refused before: "stop it first"
        export = httpx.get(f"http://127.0.0.1:{env['TF_PORT']}/export/anomalies.csv",
                           headers={"authorization": f"Bearer {secret}"}, timeout=30)
        assert export.status_code == 200, export.text
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 128 + signal.SIGTERM
    finally:
        serve.kill()
        for pid in processes_under(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_make_run_then_token_commands_and_the_pilot_on_its_port(tmp_path: Path) -> None:
    """`make run` on ports of its own; the other commands find its database from its ready
    file, without its port settings; `token list` and `revoke` as an operator uses them;
    the pilot example on TF_PORT; a stop request ends `make run` without an error."""
    from trustfabric.graph.embedded import read_ready

    port = free_port()
    env = {**os.environ, "TF_DATA_DIR": str(tmp_path), "TF_PORT": str(port),
           "TF_EMBEDDED_BOLT_PORT": str(free_port()),
           "TF_EMBEDDED_HTTP_PORT": str(free_port()), "TF_EMBEDDED_HEAP": "512m"}
    env.pop("TF_NEO4J_URI", None)
    root = Path(__file__).resolve().parents[2]
    make = subprocess.Popen(["make", "-s", "-C", str(root), "-o", ".venv/.installed", "run"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        healthy(make, port, 180)
        ready = read_ready(tmp_path)
        assert ready is not None and make.poll() is None
        command = str(Path(sys.executable).with_name("trustfabric"))
        other = {k: v for k, v in env.items() if not k.startswith("TF_EMBEDDED_")}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([command, *args], cwd=tmp_path, env=other, text=True,
                                  capture_output=True, timeout=120)

        created = cli("token", "create", "--tenant", "acme", "--name", "ci")
        assert created.returncode == 0, created.stderr[-500:]
        token_id = re.search(r"token id: (\S+)", created.stdout).group(1)
        listed = cli("token", "list")
        assert listed.returncode == 0, listed.stderr[-500:]
        row = next(line for line in listed.stdout.splitlines() if line.startswith(token_id))
        assert row.split("\t")[1:4] == ["acme", "member", "ci"]
        assert "tf_" not in listed.stdout.replace(token_id, "")  # no secret
        unknown = cli("token", "revoke", "tok_unknown")
        assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
        assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
        assert cli("token", "revoke", token_id).returncode == 0

        demo = (tmp_path / "demo-tokens.txt").read_text()
        member = re.search(r"^acme \(member\): (\S+)", demo, re.M).group(1)
        pilot = subprocess.run([sys.executable, str(root / "examples" / "psi_pilot.py"),
                                "--token", member], env=other, text=True,
                               capture_output=True, timeout=120)
        assert pilot.returncode == 0 and "PSI-CA:" in pilot.stdout, pilot.stderr[-800:]

        os.kill(ready.parent, signal.SIGTERM)  # the `serve` process, as a stop request
        _, errors = make.communicate(timeout=60)
        assert make.returncode == 0 and "Error" not in errors, errors[-500:]
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        make.stderr.close()
        for pid in processes_under(tmp_path):
            os.kill(pid, signal.SIGKILL)
