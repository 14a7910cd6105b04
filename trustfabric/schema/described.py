"""Every field of the schema says what it is (the schema is the API's manual)."""

from typing import Any

import strawberry


def described(description: str) -> Any:
    """A field with no default and its description: `name: str = described("…")`."""
    return strawberry.field(description=description)
