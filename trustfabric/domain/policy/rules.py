"""Rules and policy versions: CEL expressions over the declared facts, compiled once per
content-hashed version, and evaluated against a snapshot's facts."""

import enum
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import cel
from rapidfuzz import process

from trustfabric.domain.ids import IDENT, IDENT_RULE
from trustfabric.domain.policy.facts import FACTS, ZERO, Facts
from trustfabric.domain.provenance.enums import Severity
from trustfabric.errors import BadUserInput

MAX_RULES: Final = 100
MAX_EXPRESSION: Final = 2_000
MAX_MESSAGE: Final = 500
# A misspelt fact is named when the intended one scores at least this (rapidfuzz WRatio).
SUGGEST_SCORE: Final = 70


class RuleMode(enum.Enum):
    ENFORCE = "ENFORCE"  # a failure denies the promotion
    AUDIT = "AUDIT"  # a failure warns; the promotion passes


@dataclass(frozen=True)
class Rule:
    id: str
    expression: str
    severity: Severity
    message: str
    mode: RuleMode = RuleMode.ENFORCE
    template: str | None = None  # the catalogue entry its mitigations come from

    def document(self) -> dict[str, Any]:
        return {"id": self.id, "expression": self.expression, "severity": self.severity.value,
                "message": self.message, "mode": self.mode.value, "template": self.template}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Rule":
        return cls(id=doc["id"], expression=doc["expression"],
                   severity=Severity(doc["severity"]), message=doc["message"],
                   mode=RuleMode(doc["mode"]), template=doc.get("template"))


@dataclass(frozen=True)
class PolicyVersion:
    """Immutable: its hash names its content, and a changed rule is a new version."""

    policy_id: str
    version: str
    rules: tuple[Rule, ...]

    @property
    def hash(self) -> str:
        body = json.dumps([rule.document() for rule in self.rules], sort_keys=True,
                          separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class RuleProblem:
    rule_id: str
    kind: str  # SYNTAX, UNKNOWN_FACT, TYPE, NOT_BOOLEAN, LIMIT, DUPLICATE, NAME
    message: str
    suggestion: str | None = None


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    program: Any  # cel.Program
    facts: tuple[str, ...]  # the facts it reads

    def holds(self, facts: Facts) -> bool:
        """Raises ValueError when the expression cannot be evaluated on these facts."""
        try:
            result = self.program.execute({name: facts[name] for name in self.facts})
        except (RuntimeError, TypeError) as error:  # undefined, or no such overload
            raise ValueError(str(error)) from error
        if not isinstance(result, bool):
            raise ValueError(f"evaluates to {type(result).__name__}, not a boolean")
        return result


@dataclass(frozen=True)
class CompiledVersion:
    version: PolicyVersion
    rules: tuple[CompiledRule, ...]


class PolicyRejected(BadUserInput):
    """A version that does not compile or type-check: every problem, with suggestions."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        first = problems[0]
        super().__init__(f"rule {first.rule_id}: {first.message}", problems=[
            {"path": f"rules.{p.rule_id}", "message": p.message, "kind": p.kind,
             **({"suggestion": p.suggestion} if p.suggestion else {})} for p in problems])
        self.problems = problems


def compile_version(version: PolicyVersion) -> CompiledVersion:
    """Every rule compiled and checked against the declared facts; refused whole."""
    problems: list[RuleProblem] = []
    if not IDENT.fullmatch(version.policy_id) or not IDENT.fullmatch(version.version):
        problems.append(RuleProblem("-", "NAME", f"policy id and version: {IDENT_RULE}"))
    if not 1 <= len(version.rules) <= MAX_RULES:
        problems.append(RuleProblem("-", "LIMIT", f"a version holds 1 to {MAX_RULES} rules"))
    seen: set[str] = set()
    compiled = []
    for rule in version.rules:
        if rule.id in seen:
            problems.append(RuleProblem(rule.id, "DUPLICATE", "appears twice"))
        seen.add(rule.id)
        found, rule_problems = _compile(rule)
        problems += rule_problems
        if found is not None:
            compiled.append(found)
    if problems:
        raise PolicyRejected(problems)
    return CompiledVersion(version, tuple(compiled))


@lru_cache(maxsize=1024)
def compiled(version: PolicyVersion) -> CompiledVersion:
    """Compiled once per version: versions are immutable and hashable."""
    return compile_version(version)


def _compile(rule: Rule) -> tuple[CompiledRule | None, list[RuleProblem]]:
    problems = []
    if not IDENT.fullmatch(rule.id):
        problems.append(RuleProblem(rule.id[:64], "NAME", f"rule id: {IDENT_RULE}"))
    if len(rule.expression) > MAX_EXPRESSION or len(rule.message) > MAX_MESSAGE:
        problems.append(RuleProblem(rule.id, "LIMIT", f"an expression holds at most "
                                    f"{MAX_EXPRESSION} characters, a message {MAX_MESSAGE}"))
        return None, problems
    try:
        program = cel.compile(rule.expression)
    except ValueError as error:
        return None, [*problems, RuleProblem(rule.id, "SYNTAX", _first_line(str(error)))]
    names = tuple(program.variables())
    for name in names:
        if name not in FACTS:
            match = process.extractOne(name, FACTS.keys(), score_cutoff=SUGGEST_SCORE)
            problems.append(RuleProblem(rule.id, "UNKNOWN_FACT", f"unknown fact {name!r}",
                                        suggestion=match[0] if match else None))
    if problems:
        return None, problems
    found = CompiledRule(rule, program, names)
    problems += _type_problems(found)
    return (found, []) if not problems else (None, problems)


# `fact <op> literal` (or reversed): the literal's type must be the fact's. CEL itself
# compares a string with a number quietly (false), so an author would never hear of it.
_COMPARISON = re.compile(
    r"\b([a-z_]+)\s*(?:==|!=|<=|>=|<|>)\s*(\"[^\"]*\"|'[^']*'|-?\d+(?:\.\d+)?|true|false)"
    r"|(\"[^\"]*\"|'[^']*'|-?\d+(?:\.\d+)?|true|false)\s*(?:==|!=|<=|>=|<|>)\s*([a-z_]+)\b")


def _literal_type(literal: str) -> type:
    if literal[0] in "\"'":
        return str
    if literal in ("true", "false"):
        return bool
    return int


def _type_problems(rule: CompiledRule) -> list[RuleProblem]:
    problems = []
    for left, left_literal, right_literal, right in _COMPARISON.findall(rule.rule.expression):
        name, literal = (left, left_literal) if left else (right, right_literal)
        fact = FACTS.get(name)
        if fact is not None and fact.type is not list and _literal_type(literal) is not fact.type:
            problems.append(RuleProblem(rule.rule.id, "TYPE",
                                        f"{name} is {fact.type.__name__}, compared with "
                                        f"{literal}"))
    if problems:  # named precisely already; evaluating would say it again, vaguely
        return problems
    for sample in (_ZERO_FACTS, _SAMPLE_FACTS):
        try:
            rule.holds(sample)
        except ValueError as error:
            problems.append(RuleProblem(rule.rule.id, "TYPE", _first_line(str(error))))
            break
    return problems


_ZERO_FACTS: Final = {name: ZERO[fact.type] for name, fact in FACTS.items()}
_SAMPLE_FACTS: Final = {name: {bool: True, int: 3, str: "registry.example/base:1",
                               list: ["team=core"]}[fact.type] for name, fact in FACTS.items()}


def _first_line(message: str) -> str:
    return message.splitlines()[0][:300]
