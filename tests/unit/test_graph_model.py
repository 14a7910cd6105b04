"""graph/model.py is the one list of the graph's labels: every query and migration keeps
to it, so a label added in Cypher alone fails here."""

import importlib
import pkgutil
import re
from importlib import resources

from trustfabric.domain.provenance.model import RELATIONSHIPS
from trustfabric.graph import queries
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.model import LABELS

NODE_LABELS = re.compile(r"\(\s*\w*\s*((?::\s*\w+)+)")
RELATIONSHIP_TYPE = re.compile(r"\[\s*\w*\s*:\s*(\w+)")


def cypher_texts() -> dict[str, str]:
    texts = {}
    for module in pkgutil.iter_modules(queries.__path__):
        loaded = importlib.import_module(f"{queries.__name__}.{module.name}")
        for name, value in vars(loaded).items():
            found = value.values() if isinstance(value, dict) else [value]
            for query in found:
                if isinstance(query, Cypher):
                    texts[f"{module.name}.{name}:{query.name}"] = query.text
    for migration in resources.files("trustfabric.migrations").iterdir():
        if migration.name.endswith(".cypher"):
            texts[migration.name] = migration.read_text()
    return texts


def test_every_label_and_relationship_in_the_cypher_is_in_the_model():
    texts = cypher_texts()
    assert len(texts) > 100  # the queries were found
    labels, types = set(), set()
    for text in texts.values():
        for group in NODE_LABELS.findall(text):
            labels |= {label.strip() for label in group.split(":") if label.strip()}
        types |= set(RELATIONSHIP_TYPE.findall(text))
    assert labels - set(LABELS) == set()
    assert types - set(RELATIONSHIPS) == set()
    assert set(LABELS) - labels == set()  # and the model lists nothing the Cypher never uses


def test_the_check_sees_a_label_missing_from_the_model():
    text = "MATCH (n:Anomaly:Unlisted)-[:OBSERVED_IN]->(j:Job) RETURN n"
    found = {label for group in NODE_LABELS.findall(text) for label in group.split(":") if label}
    assert found - set(LABELS) == {"Unlisted"}
