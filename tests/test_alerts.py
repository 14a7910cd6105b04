"""The fairness alert rules: valid, firing on a breach and quiet when healthy (promtool),
and written against metrics the service really exports."""

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.test_psi import selectors
from trustfabric.client import PsiClient

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs it (Debian package prometheus)"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=ROOT / "tests")


def test_rules_are_valid():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_breach_and_stay_quiet_when_healthy():
    result = promtool("test", "rules", "ops/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


async def test_rules_use_metrics_the_service_exports(base_url, http, make_token, psi_pair):
    async with PsiClient(base_url, await make_token(psi_pair["tenant"])) as client:
        await client.cardinality(psi_pair["dataset"], selectors(2, 14))
    exported = {line.split("{")[0].split(" ")[0]
                for line in (await http.get("/metrics")).text.splitlines()
                if line and not line.startswith("#")}
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"tf_[a-z_]+", rule["expr"])}
    assert used and used <= exported, used - exported
