"""``lifecycle report``: campaign lift and lifecycle KPIs from the broker's topics.

It reads the inbound topics and the engine's output topics from the
beginning to their current end (nothing is consumed as a group, so it never
disturbs a worker), and computes the same pure report that ``lifecycle
backtest --report`` computes from a file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from agents.cli_settings import cli_settings
from lifecycle.period import Period
from lifecycle.playbook import Playbook, PlaybookError, load_playbook
from lifecycle.report import Records, Report, build_report
from schemas.codec import dumps
from schemas.events import INBOUND_TOPICS
from streams.reader import read_to_end
from streams.settings import Settings

__all__ = ["aware_time", "period_of", "period_options", "read_records", "report", "show_report"]

F = TypeVar("F", bound=Callable[..., Any])


def aware_time(value: str) -> datetime:
    """A command-line time: RFC 3339 with an offset, since event time needs one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"not an RFC 3339 time: {value}"
        raise click.BadParameter(msg) from exc
    if parsed.tzinfo is None:
        msg = f"{value} has no UTC offset; event time needs one"
        raise click.BadParameter(msg)
    return parsed


def period_of(start: str | None, end: str | None) -> Period:
    period = Period(
        None if start is None else aware_time(start), None if end is None else aware_time(end)
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


def show_report(report: Report, as_json: bool, *, err: bool = False) -> None:
    click.echo(dumps(report.as_dict()) if as_json else report.text(), err=err)


def read_records(settings: Settings, timeout: float) -> Records:
    """The report's records from the broker: inbound topics and output topics, to their end."""
    logical = {settings.topic(n): n for n in (*INBOUND_TOPICS, *Records.TOPICS)}
    messages = asyncio.run(asyncio.wait_for(read_to_end(settings, list(logical)), timeout))
    records = Records()
    for message in messages:
        name = logical[message.topic]
        if message.value is None:
            continue
        if name in INBOUND_TOPICS:
            records.add_inbound(
                message.value,
                message.key,
                name,
                limits=settings.input_limits,
                received_at=datetime.fromtimestamp(message.timestamp_ms / 1000, UTC),
            )
        else:
            records.add_output(name, message.value)
    return records


def _playbook(path: Path | None) -> Playbook:
    try:
        return load_playbook(path)
    except PlaybookError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("report")
@period_options
@click.option(
    "--playbook",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="LIFECYCLE_PLAYBOOK",
    help="Playbook YAML (env LIFECYCLE_PLAYBOOK): its value tiers and campaigns.",
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to read the topics.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def report(
    start: str | None, end: str | None, playbook: Path | None, timeout: float, as_json: bool
) -> None:
    """Campaign lift against the holdout and the lifecycle KPIs, from the broker.

    Only attribution windows opened in [--from, --to) and closed before --to
    count, so every number is final.
    """
    settings = cli_settings()
    period = period_of(start, end)
    book = _playbook(playbook or settings.playbook)
    try:
        records = read_records(settings, timeout)
    except Exception as exc:  # an unreachable broker is a message, not a traceback
        msg = f"cannot read the topics from {settings.broker}: {exc}"
        raise click.ClickException(msg) from None
    show_report(build_report(records, period, book), as_json)
