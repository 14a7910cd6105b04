"""The configuration table of docs/operations.md names every setting, and only settings."""

import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from trustfabric.settings import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|")


def env_names(name: str, field: FieldInfo) -> set[str]:
    """The variables one field is read from: its aliases if it has any (pydantic-settings
    reads an alias without the prefix), else the prefix and its name."""
    config = Settings.model_config
    alias = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        found = {choice for choice in alias.choices if isinstance(choice, str)}
    elif isinstance(alias, str):
        found = {alias}
    else:
        found = {(config.get("env_prefix") or "") + name}
    return found if config.get("case_sensitive") else {n.upper() for n in found}


def settings_variables() -> set[str]:
    return {env for name, field in Settings.model_fields.items()
            for env in env_names(name, field)}


def documented_variables(text: str) -> list[str]:
    """The first cell of each row of the table under `## Configuration`."""
    section = text.split("\n## Configuration\n", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("#"):
            break
        if match := ROW.match(line):
            rows.append(match[1])
    return rows


def test_every_setting_has_one_row_and_every_row_is_a_setting() -> None:
    rows = documented_variables(OPERATIONS.read_text(encoding="utf-8"))
    assert rows, "no configuration table under '## Configuration' in docs/operations.md"
    assert len(rows) == len(set(rows)), "a setting has two rows"
    expected = settings_variables()
    assert set(rows) - expected == set(), "rows that name no setting"
    assert expected - set(rows) == set(), "settings without a row in docs/operations.md"
