"""`make test` says what it needs: promtool from Debian's prometheus package, installed
with apt-get (root and the package registry), or a clear refusal, never a silent skip."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_fails_with_a_clear_message_when_promtool_cannot_be_installed(tmp_path):
    """No promtool on the PATH and an apt-get that fails as it does without root."""
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\necho 'E: Could not open lock file (13: Permission denied)' >&2\n"
                   "exit 100\n")
    apt.chmod(0o755)
    make = shutil.which("make")
    assert make
    result = subprocess.run([make, "-s", "-C", str(ROOT), "promtool"], capture_output=True,
                            text=True, env={**os.environ, "PATH": str(tmp_path)}, timeout=60)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "promtool" in said and "prometheus" in said and "root" in said, said


def test_make_fails_when_the_package_gives_no_promtool(tmp_path):
    """apt-get succeeds (the package installed, or a system without it) yet no promtool."""
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\nexit 0\n")
    apt.chmod(0o755)
    make = shutil.which("make")
    assert make
    result = subprocess.run([make, "-s", "-C", str(ROOT), "promtool"], capture_output=True,
                            text=True, env={**os.environ, "PATH": str(tmp_path)}, timeout=60)
    assert result.returncode != 0
    assert "promtool" in result.stdout + result.stderr
