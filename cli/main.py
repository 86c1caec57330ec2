"""The ``lifecycle`` command line.

Settings come from ``LIFECYCLE_*`` environment variables (see
``streams.settings.Settings``); flags override them for one run. Heavy imports
(Faust) happen inside commands so ``lifecycle --help`` and the backtest stay fast.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from cli.options import (
    F,
    aware_time,
    events_argument,
    json_option,
    output_sink,
    period_of,
    period_options,
    playbook_option,
    progress_option,
    read_event_lines,
    scores_write_option,
)
from cli.progress import Progress
from cli.report import show_report
from cli.settings import cli_settings, kafka_errors
from lifecycle.playbook import PlaybookError, load_playbook, parse_playbook, problems
from schemas.codec import dumps
from streams.settings import MAX_LATENESS

if TYPE_CHECKING:
    from analytics.report import Report
    from lifecycle.backtest import Summary as BacktestSummary

__all__ = ["main"]


def _finite_option(
    _ctx: click.Context, _param: click.Parameter, value: float | None
) -> float | None:
    """A float option's value, refused when it is nan (a range lets nan through)."""
    if value is not None and not math.isfinite(value):
        msg = f"{value} is not a number"
        raise click.BadParameter(msg)
    return value


def _number(
    name: str, bounds: tuple[float, float], default: float, about: str, *, above: bool = False
) -> Callable[[F], F]:
    """A float option within ``bounds`` (above the lower one only, if ``above``), nan
    refused."""
    low, high = bounds
    return click.option(
        name,
        type=click.FloatRange(low, high, min_open=above),
        callback=_finite_option,
        default=default,
        show_default=True,
        help=about,
    )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""A backtest's dead letter before any event time was read: a time of no event."""


class _Commands(click.Group):
    """The commands, with a file the system refuses (a missing directory, no
    permission) reported in one line, as click reports a bad option, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.filename is None:
                raise
            msg = f"{exc.filename}: {exc.strerror}"
            raise click.ClickException(msg) from None


@click.group(cls=_Commands)
@click.version_option(package_name="lifecycle-engine")
def main() -> None:
    """Real-time customer-lifecycle engine: events in, stages and triggers out."""


@main.command()
def worker() -> None:
    """Run a worker (Faust): consumes the inbound topics, emits transitions and triggers."""
    from agents.worker import run_worker

    settings = cli_settings()
    try:
        load_playbook(settings.playbook)
    except PlaybookError as exc:
        raise click.ClickException(str(exc)) from None
    with kafka_errors(settings):
        run_worker(settings)


@main.command()
@click.option(
    "--app-id",
    required=True,
    help="A new application id: its consumer group starts at the beginning of every topic.",
)
@click.option(
    "--output-prefix",
    default="replay.",
    show_default=True,
    help='Prepended to the output topic names; "" writes to the live output topics.',
)
def replay(app_id: str, output_prefix: str) -> None:
    """Rebuild state from the inbound topics: a worker in event time under a new app id.

    It ends with the state, transitions and trigger ids the live app has
    (docs/reliability.md), so it also checks a new playbook against history.
    """
    from agents.worker import run_worker

    settings = cli_settings()
    if app_id == settings.app_id:
        msg = f"--app-id must differ from the live app id {settings.app_id!r}"
        raise click.BadParameter(msg)
    try:
        load_playbook(settings.playbook)
    except PlaybookError as exc:
        raise click.ClickException(str(exc)) from None
    with kafka_errors(settings):
        run_worker(settings.for_replay(app_id, output_prefix))


@main.group()
def clv() -> None:
    """Predicted customer value: fit BG/NBD and Gamma-Gamma to history."""


@clv.command("fit")
@events_argument
@click.option("--until", help="End of the calibration period (default: the last purchase).")
@click.option("--time-unit", default="7d", show_default=True, help="Unit of the parameters.")
@click.option("--horizon", default="52w", show_default=True, help="Horizon of predicted_clv.")
@scores_write_option("clv_model")
@json_option("The model and fit as JSON on stdout.")
def clv_fit(
    events: Path,
    until: str | None,
    time_unit: str,
    horizon: str,
    write: Path | None,
    as_json: bool,
) -> None:
    """Fit the models to the purchases in EVENTS.jsonl by maximum likelihood.

    Prints the playbook's scores.clv_model block; with --write, puts it in a playbook.
    """
    from analytics.clv_fit import fit
    from lifecycle.clv import ClvModel
    from schemas.events import PurchaseEvent
    from schemas.inbound import Rejection, parse_event

    purchases = []
    for raw in read_event_lines(events):
        parsed = parse_event(raw) if raw.strip() else None
        if isinstance(parsed, PurchaseEvent):
            purchases.append(parsed)
        elif isinstance(parsed, Rejection):
            click.echo(f"skipped a line: {parsed.reason.value}", err=True)
    if not purchases:
        msg = f"no purchase events in {events}"
        raise click.ClickException(msg)
    end = aware_time(until) if until else max(p.occurred_at for p in purchases)
    try:
        model = ClvModel.model_validate({"time_unit": time_unit, "horizon": horizon})
        result = fit(purchases, end, model.time_unit)
    except (ValidationError, ValueError) as exc:
        raise click.ClickException(_one_line(exc)) from None
    model = model.model_copy(update={"bgnbd": result.bgnbd})
    if result.gamma_gamma is not None:
        model = model.model_copy(update={"gamma_gamma": result.gamma_gamma})
    block = {"scores": {"clv_model": model.model_dump(mode="json")}}
    click.echo(
        f"fitted on {result.customers} customers ({result.repeat_customers} with repeat "
        f"purchases) up to {end.isoformat()}; log-likelihood {result.log_likelihood:.1f}",
        err=True,
    )
    if result.gamma_gamma is None:
        click.echo("no repeat spend to fit Gamma-Gamma: kept the default", err=True)
    if as_json and write is None:
        fitted = {
            "customers": result.customers,
            "repeat_customers": result.repeat_customers,
            "log_likelihood": result.log_likelihood,
            "until": end,
        }
        click.echo(dumps({**block, "fit": fitted}))
        return
    _emit_scores(block, write)


def _one_line(exc: ValueError) -> str:
    """A fit's refusal as one line: a validation's problems joined, not pydantic's report."""
    return "; ".join(problems(exc)) if isinstance(exc, ValidationError) else str(exc)


def _emit_scores(block: dict[str, Any], write: Path | None) -> None:
    """Print a ``scores`` block, or set it in the playbook at ``write`` (validated first)."""
    import yaml

    from lifecycle.flows import yaml12

    if write is None:
        click.echo(yaml.safe_dump(block, sort_keys=False), nl=False)
        return
    # Read as the engine reads it (YAML 1.2): a YAML 1.1 read would write NO back as false.
    try:
        current = yaml12.load(write.read_text(encoding="utf-8")) if write.exists() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        msg = f"cannot set scores in {write}: {getattr(exc, 'strerror', None) or exc}"
        raise click.ClickException(msg.replace("\n", " ")) from None
    if current is not None and not isinstance(current, dict):  # never overwrite it
        msg = f"cannot set scores in {write}: its top level is not a mapping"
        raise click.ClickException(msg)
    merged = current or {}
    if not isinstance(merged.get("scores", {}), dict):
        msg = f"cannot set scores in {write}: its scores is not a mapping"
        raise click.ClickException(msg)
    merged.setdefault("scores", {}).update(block["scores"])
    text = yaml.safe_dump(merged, sort_keys=False)
    try:
        parse_playbook(text, str(write))
    except PlaybookError as exc:
        raise click.ClickException(str(exc)) from None
    write.write_text(text, encoding="utf-8")
    click.echo(f"wrote scores.{', scores.'.join(block['scores'])} to {write}", err=True)


@main.group()
def rfm() -> None:
    """RFM scores: calibrate the breakpoints on history."""


@rfm.command("calibrate")
@events_argument
@click.option("--until", help="Score recency as of this time (default: the last event).")
@scores_write_option("rfm")
@json_option("The breakpoints as JSON on stdout.")
@progress_option
def rfm_calibrate(
    events: Path, until: str | None, write: Path | None, as_json: bool, progress: bool | None
) -> None:
    """Quintile breakpoints of recency, frequency and monetary value from EVENTS.jsonl.

    The customers are built exactly as the engine builds them (refunds net out),
    by running the backtest; prints the playbook's scores.rfm block.
    """
    from analytics.rfm_calibrate import calibrate_rfm
    from lifecycle.backtest import Backtest
    from streams.collector import collect_garbage_rarely
    from streams.producer import partitioner_of

    settings = cli_settings()
    runner = Backtest(load_playbook(None), partitioner_of(settings), limits=settings.input_limits)
    collect_garbage_rarely()
    lines = read_event_lines(events)
    meter = Progress("rfm calibrate", len(lines), progress)
    for _ in runner.run(lines):
        meter.update(runner.summary.lines)
    meter.finish()
    now = aware_time(until) if until else runner.latest_event
    if now is None:
        msg = f"no events in {events}"
        raise click.ClickException(msg)
    try:
        points = calibrate_rfm(runner.states.values(), now)
    except (ValueError, ValidationError) as exc:
        raise click.ClickException(_one_line(exc)) from None
    buyers = sum(1 for s in runner.states.values() if s.orders > 0)
    click.echo(f"calibrated on {buyers} customers with orders, as of {now.isoformat()}", err=True)
    block = {"scores": {"rfm": points.model_dump(mode="json")}}
    if as_json and write is None:
        click.echo(dumps(block))
        return
    _emit_scores(block, write)


@main.group()
def playbook() -> None:
    """Playbooks: check one before a worker or a backtest uses it."""


@playbook.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def playbook_check(file: Path) -> None:
    """Validate FILE and print each flow: trigger, run control, steps, segments used.

    A bad playbook prints one line naming the place and the problem, and exits 1.
    """
    from lifecycle.flows.report import describe_playbook, language_digest
    from lifecycle.playbook import builtin_language

    try:
        book = load_playbook(file)
    except PlaybookError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    for line in describe_playbook(book, builtin_language()[1]):
        click.echo(line)
    segments = ", ".join(book.segments) or "-"
    off = sum(not flow.enabled for flow in book.flows.values())
    click.echo(
        f"{file}: ok, {len(book.flows)} flows{f' ({off} off)' if off else ''},"
        f" segments: {segments},"
        f" flows digest {language_digest(book)}",
        err=True,
    )


@main.group()
def topics() -> None:
    """Kafka topic administration."""


@topics.command("create")
def topics_create() -> None:
    """Create every engine topic with LIFECYCLE_PARTITIONS partitions (idempotent)."""
    from streams.admin import ensure_topics

    settings = cli_settings()
    with kafka_errors(settings):
        reports = asyncio.run(ensure_topics(settings))
    for report in reports:
        click.echo(f"{report.status:9} {report.topic} ({report.partitions} partitions)")
    if any(r.status == "mismatch" for r in reports):
        msg = "some topics have a different partition count"
        raise click.ClickException(msg)


def _until_is_early(until: datetime | None, last: datetime | None) -> str | None:
    """A backtest applies every event of its file: an ``--until`` before the last one
    cannot stop it there, so it says so rather than seem to."""
    if until is not None and last is not None and until < last:
        return (
            f"backtest: --until {until.isoformat()} is before the last event"
            f" ({last.isoformat()}): every event was applied, and timers fired up to it"
        )
    return None


@main.command()
@events_argument
@playbook_option("Playbook YAML (env LIFECYCLE_PLAYBOOK); the built-in default when unset.")
@click.option(
    "--until", "until", help="Fire timers up to this RFC 3339 time (default: the last event's)."
)
@click.option(
    "--lateness",
    type=click.FloatRange(min=0, max=MAX_LATENESS),
    callback=_finite_option,
    help="Allowed lateness in seconds (env LIFECYCLE_ALLOWED_LATENESS; default 0).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@click.option(
    "--received-at",
    "received_at",
    help="Refuse events more than LIFECYCLE_MAX_FUTURE after this RFC 3339 time, as a worker"
    " receiving the file then would (default: no such bound, so the output depends on the"
    " file alone).",
)
@json_option('The summary as one JSON object on stderr, the bad lines in it ("rejected_lines").')
@click.option(
    "--report",
    "with_report",
    is_flag=True,
    help='Also print `lifecycle report` for this run on stderr (in the --json object as "report").',
)
@period_options
@progress_option
def backtest(
    events: Path,
    playbook: Path | None,
    until: str | None,
    lateness: float | None,
    output: Path | None,
    received_at: str | None,
    as_json: bool,
    with_report: bool,
    start: str | None,
    end: str | None,
    progress: bool | None,
) -> None:
    """Run the lifecycle core over EVENTS.jsonl, no broker: a playbook dry run.

    Writes each output as a JSON line {"topic", "key", "value"}; a malformed
    line is reported on stderr with its number and written as the dead letter a
    worker writes (its offset the line number, its time the latest event time
    accepted before it). Time is event time, exactly as a worker with
    LIFECYCLE_CLOCK=event runs it. A file has no Kafka record timestamps, so the
    worker's bound on future events applies only against --received-at: the wall
    clock would make the same file's output depend on the day it ran. Keys go to
    partitions as on the cluster, by LIFECYCLE_PARTITIONS and
    LIFECYCLE_INPUT_PARTITIONER: set them as the cluster's (recommendations are
    counted per partition).
    """
    from analytics.report import Records, build_report
    from lifecycle.backtest import Backtest, LineRejected
    from schemas.inbound import dead_letter
    from streams.collector import collect_garbage_rarely
    from streams.producer import partitioner_of

    if (start or end) and not with_report:
        msg = "--from and --to are the report's period: give them with --report"
        raise click.UsageError(msg)
    settings = cli_settings()
    try:
        book = load_playbook(playbook)
    except PlaybookError as exc:
        raise click.ClickException(str(exc)) from None
    collect_garbage_rarely()  # the records of every customer stay alive to the end
    period = period_of(start, end)
    until_at = aware_time(until) if until else None
    late = settings.lateness if lateness is None else timedelta(seconds=lateness)
    runner = Backtest(
        book,
        partitioner_of(settings),
        lateness=late,
        limits=settings.input_limits,
        received_at=aware_time(received_at, "--received-at") if received_at else None,
    )
    lines = read_event_lines(events)
    rejected: list[dict[str, object]] = []  # with --json, stderr holds one JSON object
    with output_sink(output) as sink:
        meter = Progress("backtest", len(lines), progress)
        records = (
            Records.of_backtest(lines, (), runner.limits, runner.received_at)
            if with_report
            else None
        )
        for item in runner.run(lines, until=until_at):
            meter.update(runner.summary.lines)
            if records is not None:
                records.add_item(item)
            if isinstance(item, LineRejected):
                reason, message = item.rejection.reason.value, item.rejection.message
                if as_json:
                    rejected.append({"line": item.line, "reason": reason, "message": message})
                else:
                    click.echo(f"line {item.line}: {reason}: {message}", err=True)
                letter = dead_letter(
                    topic="" if item.topic is None else settings.topic(item.topic),
                    partition=item.partition,
                    offset=item.line,
                    key=None if item.key is None else item.key.encode(),
                    value=item.raw.rstrip(b"\r\n"),
                    rejection=item.rejection,
                    at=item.after or EPOCH,
                )
                sink.write(
                    dumps({"topic": settings.topic("deadletter"), "key": item.key, "value": letter})
                    + b"\n"
                )
                continue
            record = {"topic": settings.topic(item.topic), "key": item.key, "value": item.value}
            sink.write(dumps(record) + b"\n")
    meter.finish()
    early = _until_is_early(until_at, runner.latest_event)
    report = None if records is None else build_report(records, period, book)
    _show_summary(runner.summary, report, rejected, early, as_json=as_json)


def _show_summary(
    summary: BacktestSummary,
    report: Report | None,
    rejected: list[dict[str, object]],
    early: str | None,
    *,
    as_json: bool,
) -> None:
    """A backtest's summary on stderr: tables, or one JSON object holding the bad lines
    and the warning too."""
    if as_json:
        data = summary.as_dict()
        data["rejected_lines"] = rejected
        data["warnings"] = [] if early is None else [early]
        if report is not None:
            data["report"] = report.as_dict()
        click.echo(dumps(data), err=True)
        return
    if early is not None:
        click.echo(early, err=True)
    click.echo(summary.line(), err=True)
    click.echo(summary.campaigns(), err=True)
    if summary.flows.flows:
        click.echo("", err=True)
        click.echo(summary.flows.table(), err=True)
    if report is not None:
        click.echo("", err=True)
        show_report(report, False, err=True)


@main.command()
@click.option(
    "--customers",
    type=click.IntRange(1, 10_000_000),
    default=1000,
    show_default=True,
    help="Simulated customers.",
)
@click.option("--seed", default=7, show_default=True, help="Same seed, same events.")
@_number("--days", (0, 36_500), 365.0, "Simulated span of event time.", above=True)
@_number("--rate", (0, 1_000_000), 0.0, "Events per second to publish (0: as fast as possible).")
@_number("--duplicates", (0, 1), 0.0, "Share of events delivered twice.")
@click.option(
    "--welcome-effect",
    type=click.FloatRange(0, 1),
    default=None,
    help="Customers sent the welcome mail (consent, not held out) order once more within "
    "its attribution window with this probability: a known effect for `lifecycle report`.",
)
@click.option(
    "--extras",
    is_flag=True,
    help="Also traits on signups, properties on carts and purchases, and wishlist_add "
    "custom events (the other events stay the same).",
)
@click.option(
    "--abandoned",
    is_flag=True,
    help="Also sessions that end without an order: signed-up customers view products, "
    "sometimes add one to a cart, and leave (the other events stay the same).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JSON lines to this file instead of publishing to Kafka.",
)
@json_option("The result as one JSON object on stderr.")
@progress_option
def simulate(
    customers: int,
    seed: int,
    days: float,
    rate: float,
    duplicates: float,
    welcome_effect: float | None,
    extras: bool,
    abandoned: bool,
    output: Path | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Publish a seeded, realistic stream of shop events (or write it to a file)."""
    from analytics.simulation import Effect
    from analytics.simulation import simulate as generate
    from schemas.records import Campaign

    effect = None
    if welcome_effect is not None:
        try:
            book = load_playbook(cli_settings().playbook)
        except PlaybookError as exc:
            raise click.ClickException(str(exc)) from None
        rule = book.campaigns[Campaign.WELCOME]
        effect = Effect(
            welcome_effect, holdout=book.holdout_share(rule), window=rule.attribution_window
        )
    events = generate(
        customers,
        seed=seed,
        days=days,
        duplicate_rate=duplicates,
        effect=effect,
        extras=extras,
        abandoned=abandoned,
    )
    meter = Progress("simulate", None, progress)
    if output is not None:
        count = 0
        with output_sink(output) as sink:
            for event in events:
                sink.write(dumps(event) + b"\n")
                count += 1
                meter.update(count)
        meter.finish()
        report: dict[str, object] = {"events": count, "output": str(output)}
        text = f"wrote {count} events to {output}"
    else:
        from streams.producer import publish_events

        settings = cli_settings()
        with kafka_errors(settings):
            sent = asyncio.run(publish_events(settings, events, rate=rate, progress=meter.update))
        meter.finish()
        report = {"events": sent, "broker": settings.broker}
        text = f"published {sent} events to {settings.broker}"
    click.echo(dumps(report) if as_json else text, err=True)


@main.group()
def schemas() -> None:
    """Message schemas."""


@schemas.command("export")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("json-schema")
)
def schemas_export(directory: Path) -> None:
    """Write one JSON Schema file per message type into DIRECTORY (default: json-schema)
    and print each file's path."""
    from schemas.export import export_schemas

    for path in export_schemas(directory):
        click.echo(str(path))


@main.command()
@click.option("--customers", default=2000, show_default=True, help="Simulated customers.")
@click.option("--rate", default=100.0, show_default=True, help="Simulated events per second.")
@click.option("--seed", type=int, default=None, help="Default: a new seed each run.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def dev(customers: int, rate: float, seed: int | None, duration: float | None) -> None:
    """The one-command demo: local broker, topics, a worker, the synthetic shop, live counts.

    The worker runs the demo playbook (the README's flow recipes and a wishlist
    reminder) unless LIFECYCLE_PLAYBOOK names another; the shop sends birthdays,
    properties and wishlist_add events for its flows. Ctrl-C stops everything
    this command started.
    """
    from cli.dev import run_dev

    code = run_dev(cli_settings(), customers=customers, rate=rate, seed=seed, duration=duration)
    sys.exit(code)


def _add_subcommands() -> None:
    from cli.kafka import kafka_group
    from cli.ops import customer, lag, mailer
    from cli.report import report

    main.add_command(report)
    main.add_command(kafka_group)
    main.add_command(lag)
    main.add_command(customer)
    main.add_command(mailer)


_add_subcommands()
