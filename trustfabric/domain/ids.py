"""The forms of the identifiers callers send, checked before any is written anywhere."""

import re

from trustfabric.errors import BadUserInput

# Read with `fullmatch` only: `match` with a final `$` also accepts a value followed by a
# newline, which is another value (`sha256:<hex>\n` recorded a second image).
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
IDENT_RULE = "letters, digits, '.', '_' or '-', at most 128"


def check_name(value: str, what: str) -> str:
    """A tenant or partner name, as an operator or a file gives it: the id rules, since it
    becomes part of every key (`Kind:tenant:id`) and of dataset ids (`partner/name`)."""
    if not IDENT.fullmatch(value):
        raise BadUserInput(f"{what}: {IDENT_RULE}")
    return value


def check_ids(dataset_id: str, idempotency_key: str) -> None:
    """Before either is written anywhere, audit included."""
    if not DATASET_ID.fullmatch(dataset_id):
        raise BadUserInput("datasetId must be <partner>/<name>")
    if not IDENT.fullmatch(idempotency_key):
        raise BadUserInput(f"idempotencyKey: {IDENT_RULE}")
