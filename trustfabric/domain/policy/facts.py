"""The facts a data snapshot holds about an image, declared with their types: CEL rules
are checked against this schema, and a snapshot with anything else is refused."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from trustfabric.errors import BadUserInput

Facts = dict[str, Any]


@dataclass(frozen=True)
class Fact:
    name: str
    type: type  # bool, int or str, or list for a list of strings
    description: str


FACTS: Final[dict[str, Fact]] = {fact.name: fact for fact in (
    Fact("signed", bool, "the image carries a verified signature"),
    Fact("sbom_present", bool, "an SBOM was attached to the image"),
    Fact("vulns_critical", int, "known vulnerabilities of critical severity"),
    Fact("vulns_high", int, "known vulnerabilities of high severity"),
    Fact("vulns_medium", int, "known vulnerabilities of medium severity"),
    Fact("base_image", str, "the reference of the image it is built on"),
    Fact("labels", list, "the image's labels, as key=value strings"),
    Fact("provenance_level", int, "SLSA build level of its provenance, 0 to 4"),
    Fact("age_days", int, "days since the image was built"),
)}

# What a rule reads when a snapshot lacks a fact: absence is a value, not an error.
ZERO: Final[dict[type, Any]] = {bool: False, int: 0, str: "", list: []}


def fact_problems(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    """Names not declared, and values of the wrong type: every one."""
    problems = []
    for name, value in facts.items():
        fact = FACTS.get(name)
        if fact is None:
            problems.append({"path": f"facts.{name}", "message": "not a declared fact"})
        elif not _is(value, fact.type):
            problems.append({"path": f"facts.{name}",
                             "message": f"must be {_type_name(fact.type)}"})
    return problems


def check_facts(facts: Mapping[str, Any]) -> Facts:
    """The snapshot's facts, complete (absent facts at their zero) and typed; refused with
    every problem when a name is not declared or a value has the wrong type."""
    problems = fact_problems(facts)
    if problems:
        first = problems[0]
        raise BadUserInput(f"{first['path']}: {first['message']}", problems=problems)
    return {name: facts.get(name, ZERO[fact.type]) for name, fact in FACTS.items()}


def facts_hash(facts: Facts) -> str:
    body = json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _is(value: Any, kind: type) -> bool:
    if kind is int:  # bool is an int to Python, not to a policy author
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _type_name(kind: type) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string", list: "a list of strings"}[kind]
