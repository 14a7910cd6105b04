"""The fairness alert rules: valid, firing on a breach and quiet when healthy (promtool),
and written, like the dashboard's queries, against metrics the service really exports."""

import re
import shutil
import subprocess

import yaml
from prometheus_client import REGISTRY

from tests.helpers import ROOT, RULES, dashboard_queries


def labels_used(query: str) -> set[str]:
    grouped = {label.strip() for group in re.findall(r"by \(([^)]*)\)", query)
               for label in group.split(",")}
    return grouped | set(re.findall(r"(\w+)=", query))


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


async def test_rules_and_dashboard_use_metrics_the_service_exports(http):
    # every family the service declares, with the series a histogram's name stands for: a
    # labelled family shows no sample until something is counted in it (no refusal yet)
    declared = re.findall(r"^# TYPE (\S+) (\S+)$", (await http.get("/metrics")).text, re.M)
    exported = {name + suffix for name, kind in declared
                for suffix in (("_bucket", "_sum", "_count") if kind == "histogram" else ("",))}
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    for queries in ([rule["expr"] for rule in rules], dashboard_queries()):
        used = {name for query in queries for name in re.findall(r"tf_[a-z_]+", query)}
        assert used and used <= exported, used - exported
        for query in queries:  # and the labels they group and select by: the metrics' own,
            # a histogram's buckets, and what Prometheus adds to every series it scrapes
            names = set(re.findall(r"tf_[a-z_]+", query))
            known = {"le", "instance", "job"} | {
                label for name in names
                for label in REGISTRY._names_to_collectors[name]._labelnames}
            assert labels_used(query) <= known, (query, labels_used(query) - known)
