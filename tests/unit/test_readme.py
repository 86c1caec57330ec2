"""The README and docs/ against the code they describe.

The README is what users build against: a setting missing from its table, an
event field it does not name, or a default it states wrongly misleads them
silently, and a link to a file that moved leaves them stranded. These tests
read the repository as it is, so a setting or a doc another change adds is
demanded as soon as it lands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from schemas.events import EVENT_TYPES, TOPIC_OF_TYPE, OrderItem
from schemas.inbound import Reason
from streams.settings import Settings, TopicNames

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 320

WRITTEN_ELSEWHERE = frozenset(
    {"docs/producers.md", "docs/monitoring.md", "docs/security.md", "docs/testing.md"}
)
"""Docs the README links to that other changes add; a link to them counts until they land,
and from then on their anchors are checked like any other file's."""

EVERY_EVENT = "every event"
"""The event-contract table's name for the fields every type shares."""


def _documents() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


CHECKED_SUFFIXES = frozenset({".py", ".yaml", ".yml", ".toml", ".md"})
SKIPPED_FOLDERS = frozenset({"__pycache__", "build", "dist", "test-artifacts", "node_modules"})
"""Folders of generated files; hidden ones (.git, .venv, caches) are skipped too."""


def _repository_files() -> list[Path]:
    """Every source, configuration and Markdown file of the repository but this one."""
    files: list[Path] = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in SKIPPED_FOLDERS
            and not name.endswith(".egg-info")
        ]
        files.extend(Path(folder, name) for name in names if Path(name).suffix in CHECKED_SUFFIXES)
    this = Path(__file__).resolve()
    return sorted(path for path in files if path.resolve() != this)


def _prose(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def section(text: str, title: str) -> str:
    """The body of the level-two section ``## title``, up to the next one."""
    lines: list[str] = []
    inside = False
    for line in _prose(text):
        if line.startswith("## "):
            inside = line[3:].strip() == title
            continue
        if inside:
            lines.append(line)
    assert lines, f"no section '## {title}'"
    return "\n".join(lines)


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text``: rows of stripped cells, header first, no rule."""
    found: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found


def table(text: str, header: list[str]) -> list[list[str]]:
    """The body rows of the one table of ``text`` with this header."""
    matching = [t[1:] for t in tables(text) if t[0] == header]
    assert len(matching) == 1, f"expected one table with header {header}, found {len(matching)}"
    return matching[0]


def code(cell: str) -> list[str]:
    """The backticked values of a cell, in order."""
    return re.findall(r"`([^`]*)`", cell)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in _prose(text):
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_is_short_enough_to_read(readme: str) -> None:
    assert len(readme.splitlines()) <= MAX_README_LINES


def test_setup_commands_are_the_makefiles(readme: str) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    for target in ("dev", "test"):
        assert re.search(rf"^make {target}\b", setup, re.MULTILINE), f"make {target} not in Set-up"
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"Makefile has no {target}"


# Settings


OPERATIONS = ROOT / "docs" / "operations.md"
"""Where the settings table lives; the README's Settings section points to it."""


def _settings_rows(readme: str) -> list[tuple[list[str], list[str], str]]:
    """(variables, defaults, meaning) of each row of the settings table (docs/operations.md)."""
    assert "docs/operations.md#settings" in section(readme, "Settings")
    operations = OPERATIONS.read_text(encoding="utf-8")
    rows = table(section(operations, "Settings"), ["variable", "default", "meaning"])
    return [
        (code(variables), [d.strip() for d in default.split(" / ")], meaning)
        for variables, default, meaning in rows
    ]


NESTED = {
    "topics": "LIFECYCLE_TOPICS__<NAME>",
    "mailer_max_age": "LIFECYCLE_MAILER_MAX_AGE__<CAMPAIGN>",
}
"""Settings set one key at a time, each documented as one row."""


def _variable(field: str) -> str:
    return NESTED.get(field, f"LIFECYCLE_{field.upper()}")


def test_every_setting_is_in_the_settings_table(readme: str) -> None:
    documented = {v for variables, _, _ in _settings_rows(readme) for v in variables}
    expected = {_variable(name) for name in Settings.model_fields}
    assert sorted(expected - documented) == [], "settings missing from the settings table"
    assert sorted(documented - expected) == [], "settings table rows for settings that do not exist"


def test_every_topic_can_be_renamed_as_the_table_says(readme: str) -> None:
    row = next(r for r in _settings_rows(readme) if r[0] == ["LIFECYCLE_TOPICS__<NAME>"])
    assert set(code(row[2])) == {name.upper() for name in TopicNames.model_fields}


def _documented_default(defaults: list[str], index: int, count: int) -> str | None:
    """The backticked default of the ``index``-th of ``count`` variables of a row, or
    None where the row gives none in backticks (unset, built-in)."""
    cell = defaults[index] if len(defaults) == count else " / ".join(defaults)
    if cell == "empty":
        return ""
    values = code(cell)
    return values[0] if len(values) == 1 and cell == f"`{values[0]}`" else None


def _field_default(name: str) -> Any:
    return Settings.model_fields[name].get_default(call_default_factory=True)


def test_every_stated_default_is_the_codes(readme: str) -> None:
    """Read the way pydantic-settings reads the variable, each default equals the field's."""
    for variables, defaults, _ in _settings_rows(readme):
        for index, variable in enumerate(variables):
            name = variable.removeprefix("LIFECYCLE_").lower()
            if name not in Settings.model_fields or name == "topics":
                continue
            stated = _documented_default(defaults, index, len(variables))
            actual = _field_default(name)
            if actual is None:
                assert stated is None, f"{variable}: the code has no default, README says {stated}"
                continue
            assert stated is not None, f"{variable}: no default in backticks"
            if stated.startswith("~/"):
                stated = str(Path(stated).expanduser())
            annotation = Settings.model_fields[name].annotation
            assert annotation is not None
            assert TypeAdapter(annotation).validate_python(stated) == actual, variable


# The event contract


def _contract_rows(readme: str) -> dict[tuple[str, str], str]:
    """(event type or ``every event``, field) -> the required cell."""
    rows = table(section(readme, "Event contract"), ["type", "field", "required", "value"])
    found: dict[tuple[str, str], str] = {}
    for kind, field, required, _ in rows:
        key = (kind.strip("`"), field.strip("`"))
        assert key not in found, f"{key} documented twice"
        found[key] = required
    return found


def _fields() -> Iterator[tuple[str, str, bool]]:
    """(type, field as the README names it, required) of every inbound event field."""
    for kind, model in EVENT_TYPES.items():
        for name, info in model.model_fields.items():
            yield kind, name, info.is_required()
        if "items" in model.model_fields:
            for name, info in OrderItem.model_fields.items():
                yield kind, f"items[].{name}", info.is_required()


def test_every_field_of_every_event_type_is_in_the_contract(readme: str) -> None:
    rows = _contract_rows(readme)
    for kind, field, required in _fields():
        cell = rows.get((kind, field), rows.get((EVERY_EVENT, field)))
        assert cell is not None, f"{kind}.{field} is not in the README's event contract"
        if required:
            assert cell == "yes", f"{kind}.{field} is required, the README says {cell!r}"
        else:
            assert cell != "yes", f"{kind}.{field} is optional, the README says it is required"


def test_the_contract_names_no_field_the_schema_lacks(readme: str) -> None:
    known = {(kind, field) for kind, field, _ in _fields()}
    for kind, field in _contract_rows(readme):
        if kind == EVERY_EVENT:
            assert all((k, field) in known for k in EVENT_TYPES), f"{field} is not on every type"
        else:
            assert (kind, field) in known, f"{kind}.{field} is not in the schema"


def test_every_event_type_is_on_its_topic(readme: str) -> None:
    rows = table(section(readme, "Event contract"), ["topic", "direction", "messages"])
    names = TopicNames()
    for kind, logical in TOPIC_OF_TYPE.items():
        topic = getattr(names, logical)
        assert any(code(row[0]) == [topic] and kind in code(row[2]) for row in rows), (
            f"{kind} on {topic} is not in the topics table"
        )
    listed = {t for row in rows for t in code(row[0])}
    assert {str(getattr(names, n)) for n in TopicNames.model_fields} <= listed


def test_every_dead_letter_reason_is_explained(readme: str) -> None:
    rows = table(section(readme, "Outputs"), ["reason", "the message"])
    documented = {c for row in rows for c in code(row[0])}
    assert documented == {reason.value for reason in Reason}


# Links and references


def _links(path: Path) -> Iterator[str]:
    for line in _prose(path.read_text(encoding="utf-8")):
        yield from re.findall(r"\]\(([^)\s]+)\)", line)


@pytest.mark.parametrize("document", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_into_the_repository(document: Path) -> None:
    for link in _links(document):
        if re.match(r"[a-z]+:", link):
            continue  # a web address, not a file
        target, _, anchor = link.partition("#")
        resolved = (document.parent / target).resolve() if target else document
        assert resolved.is_relative_to(ROOT), f"{link}: outside the repository"
        relative = resolved.relative_to(ROOT).as_posix()
        if not resolved.exists():
            assert relative in WRITTEN_ELSEWHERE, f"{link}: no such file"
            continue
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved.read_text(encoding="utf-8")), f"{link}: no anchor"


@pytest.mark.parametrize("document", _repository_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_to_files_a_clone_lacks(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    for outside in ("DESIGN.md", "../shared"):
        assert outside not in text, f"{document.name} refers to {outside}"
