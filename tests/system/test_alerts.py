"""The fairness alert rules and the dashboard's queries: valid, and the rules firing on a
breach and quiet when healthy (promtool); that they use metrics the service really exports
is tests/integration/test_alerts.py."""

import shutil
import subprocess

import yaml

from tests.helpers import ROOT, RULES, dashboard_queries


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs it (Debian package prometheus)"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=ROOT / "tests")


def test_rules_are_valid():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_are_valid(tmp_path):
    """promtool checks PromQL in rule files: each query becomes a recording rule there."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{n}", "expr": query}
        for n, query in enumerate(dashboard_queries())]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(tmp_path / "dashboard.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in result.stdout


def test_alerts_fire_on_breach_and_stay_quiet_when_healthy():
    result = promtool("test", "rules", "ops/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout




def test_every_alert_links_its_runbook():
    """Each alert's `runbook` annotation is docs/ops/runbooks/<alert>.md, which exists and
    is about that alert; and no runbook there is left without its alert."""
    alerts = {rule["alert"]: rule["annotations"]["runbook"]
              for group in yaml.safe_load(RULES.read_text())["groups"]
              for rule in group["rules"] if "alert" in rule}
    assert alerts
    for alert, runbook in alerts.items():
        assert runbook == f"docs/ops/runbooks/{alert}.md", (alert, runbook)
        assert (ROOT / runbook).read_text().startswith(f"# {alert} "), runbook
    written = {path.stem for path in (ROOT / "docs" / "ops" / "runbooks").glob("*.md")}
    assert written - {"README"} == set(alerts)
