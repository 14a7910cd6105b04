"""Numbered Cypher migrations and the runner that applies each once, in order."""

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import LiteralString, cast

from trustfabric.errors import AppError
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.executor import GraphExecutor
from trustfabric.graph.queries import migrations as q

log = logging.getLogger(__name__)

_FILE = re.compile(r"([0-9]{4})_([a-z0-9_]+)\.cypher")


@dataclass(frozen=True)
class Migration:
    id: str
    name: str
    statements: tuple[str, ...]
    checksum: str


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE.fullmatch(entry.name)
        if not match:
            continue
        text = entry.read_text()
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        statements = tuple(s.strip() for s in body.split(";") if s.strip())
        found.append(
            Migration(match[1], match[2], statements, hashlib.sha256(text.encode()).hexdigest())
        )
    return sorted(found, key=lambda m: m.id)


async def migrate(executor: GraphExecutor) -> list[str]:
    """Applies pending migrations; returns the ids applied. Safe to run again."""
    executor = executor.without_deadline()  # a data slice may outlast a request's budget
    applied = {row["id"]: row["checksum"] for row in await executor.read(q.APPLIED)}
    done = []
    for migration in load_migrations():
        if migration.id in applied:
            if applied[migration.id] != migration.checksum:
                raise AppError(f"migration {migration.id} changed after it was applied")
            continue
        await apply(executor, migration)
        await executor.write(
            q.RECORD, id=migration.id, name=migration.name, checksum=migration.checksum
        )
        log.info("applied migration %s_%s", migration.id, migration.name)
        done.append(migration.id)
    return done


async def apply(executor: GraphExecutor, migration: Migration) -> None:
    """Runs a migration's statements, without recording it. A statement that returns
    `changed` is run again until it changes nothing: data is migrated in slices, so no
    transaction grows with the graph."""
    # Schema statements run one per transaction: Neo4j refuses DDL mixed with writes.
    for number, statement in enumerate(migration.statements):
        # read from a file, so not a literal: the cast says it is meant, to checkers that know
        # LiteralString; mypy reads LiteralString as str, and finds the cast redundant
        text = cast(LiteralString, statement)  # type: ignore[redundant-cast]
        ddl = Cypher(f"migration.{migration.id}.{number}", text)
        while (rows := await executor.write(ddl)) and rows[0].get("changed"):
            pass
