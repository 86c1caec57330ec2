"""The options several commands take, each defined once, and the parsing of their values."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from analytics.period import Period

__all__ = [
    "aware_time",
    "events_argument",
    "json_option",
    "output_sink",
    "period_of",
    "period_options",
    "playbook_option",
    "progress_option",
    "read_event_lines",
    "scores_write_option",
    "timeout_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def aware_time(value: str, option: str = "--until") -> datetime:
    """A command-line time given as ``option``: RFC 3339 with an offset, since event time
    needs one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"not an RFC 3339 time: {value}"
        raise click.BadParameter(msg, param_hint=f"'{option}'") from exc
    if parsed.tzinfo is None:
        msg = f"{value} has no UTC offset; event time needs one"
        raise click.BadParameter(msg, param_hint=f"'{option}'")
    return parsed


def period_of(start: str | None, end: str | None) -> Period:
    period = Period(
        None if start is None else aware_time(start, "--from"),
        None if end is None else aware_time(end, "--to"),
    )
    if period.start and period.end and period.start >= period.end:
        msg = "--from must be before --to"
        raise click.BadParameter(msg)
    return period


def period_options(command: F) -> F:
    """``--from`` and ``--to``: the report's period in event time, [from, to)."""
    for option in (
        click.option("--to", "end", help="End of the period, exclusive (RFC 3339)."),
        click.option("--from", "start", help="Start of the period (RFC 3339)."),
    ):
        command = option(command)
    return command


events_argument = click.argument(
    "events", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
"""``EVENTS``: a JSON-lines file of inbound events, one event a line."""

_BOM = b"\xef\xbb\xbf"


def read_event_lines(events: Path) -> list[bytes]:
    """The lines of an events file, without the UTF-8 byte-order mark that editors and
    spreadsheet exports put before the first one (JSON forbids it, so line 1 would
    be refused)."""
    with events.open("rb") as source:
        lines = source.readlines()
    if lines and lines[0].startswith(_BOM):
        lines[0] = lines[0][len(_BOM) :]
    return lines


progress_option = click.option(
    "--progress/--no-progress", default=None, help="Show progress (default: on a terminal)."
)
"""``--progress/--no-progress``: a progress line on stderr, by default only on a terminal."""


@contextlib.contextmanager
def output_sink(output: Path | None) -> Iterator[BinaryIO]:
    """Where a command writes its JSON lines: the file ``output``, or standard output
    for none or ``-`` (flushed, not closed)."""
    if output is None or str(output) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as sink:
        yield sink


def json_option(help_text: str) -> Callable[[F], F]:
    """``--json`` (the parameter ``as_json``): what the command prints as JSON instead."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def playbook_option(help_text: str) -> Callable[[F], F]:
    """``--playbook FILE`` (env LIFECYCLE_PLAYBOOK): an existing playbook YAML."""
    return click.option(
        "--playbook",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="LIFECYCLE_PLAYBOOK",
        help=help_text,
    )


def scores_write_option(block: str) -> Callable[[F], F]:
    """``--write FILE``: set the playbook's ``scores.<block>`` in FILE instead of printing it."""
    return click.option(
        "--write",
        "write",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Set scores.{block} in this playbook file (its comments are not kept).",
    )


def timeout_option(default: float, help_text: str) -> Callable[[F], F]:
    """``--timeout SECONDS``, at least one: how long a command waits for the broker."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=default,
        show_default=True,
        help=help_text,
    )
