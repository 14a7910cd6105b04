"""The alert rules and the dashboard's queries use metrics the running service declares,
and only their labels."""

import re

import yaml
from prometheus_client import REGISTRY

from tests.helpers import RULES, dashboard_queries


def labels_used(query: str) -> set[str]:
    grouped = {label.strip() for group in re.findall(r"by \(([^)]*)\)", query)
               for label in group.split(",")}
    return grouped | set(re.findall(r"(\w+)=", query))


async def test_rules_and_dashboard_use_metrics_the_service_exports(http):
    # every family the service declares, with the series a histogram's name stands for: a
    # labelled family shows no sample until something is counted in it (no refusal yet)
    declared = re.findall(r"^# TYPE (\S+) (\S+)$", (await http.get("/metrics")).text, re.M)
    exported = {name + suffix for name, kind in declared
                for suffix in (("_bucket", "_sum", "_count") if kind == "histogram" else ("",))}
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"]
             for rule in group["rules"]]
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
