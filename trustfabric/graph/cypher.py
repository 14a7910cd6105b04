"""A named, parameterised Cypher statement: the only form in which queries exist."""

from dataclasses import dataclass
from typing import LiteralString


@dataclass(frozen=True, slots=True)
class Cypher:
    name: str  # used in metrics and logs; the text never is
    text: LiteralString
