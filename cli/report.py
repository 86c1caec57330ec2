"""``lifecycle report``: campaign and flow lift and lifecycle KPIs from the broker's topics.

It reads the inbound topics and the engine's output topics from the
beginning to their current end (nothing is consumed as a group, so it never
disturbs a worker), and computes the same pure report that ``lifecycle
backtest --report`` computes from a file.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click

from analytics.report import Records, Report, build_report
from cli.options import json_option, period_of, period_options, playbook_option, timeout_option
from cli.settings import cli_settings
from lifecycle.playbook import Playbook, PlaybookError, load_playbook
from schemas.codec import dumps
from schemas.events import INBOUND_TOPICS
from streams.reader import read_to_end
from streams.settings import Settings

__all__ = ["read_records", "report", "show_report"]


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
@playbook_option("Playbook YAML (env LIFECYCLE_PLAYBOOK): its value tiers and campaigns.")
@timeout_option(120.0, "Seconds to read the topics.")
@json_option("One JSON object instead of tables.")
def report(
    start: str | None, end: str | None, playbook: Path | None, timeout: float, as_json: bool
) -> None:
    """Campaign and flow lift against the holdout and the lifecycle KPIs, from the broker.

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
