"""Operations commands: ``lifecycle lag`` and ``lifecycle customer``.

``lag``: the engine group's consumer lag, for people and for scripts. Two
samples ``--interval`` seconds apart give each partition's trend (messages
per second the lag grows or shrinks). With ``--max-lag N`` it exits 1 when the
total lag exceeds N, so a cron job or an alert script can call it as is.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

import click

from cli.options import json_option
from cli.settings import cli_settings, kafka_errors
from schemas.codec import dumps
from streams.lag import LagProbe, PartitionLag
from streams.settings import Settings

__all__ = ["customer", "lag", "mailer"]


async def _sample(
    settings: Settings, group: str | None, interval: float
) -> tuple[list[PartitionLag], list[PartitionLag]]:
    async with LagProbe(settings, group) as probe:
        if group is not None and group != settings.app_id:  # a mailer's, say: its own topics
            probe.topics = await probe.committed_topics() or probe.topics
        first = await probe.measure()
        if interval <= 0:
            return first, first
        await asyncio.sleep(interval)
        return first, await probe.measure()


@click.command("lag")
@click.option(
    "--group",
    help="Consumer group (default: LIFECYCLE_APP_ID, on the engine's topics); another group"
    " is measured on the topics it has committed offsets on.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds between the two samples that give the trend (0: one sample, no trend).",
)
@click.option("--max-lag", type=click.IntRange(min=0), help="Exit 1 when the total lag is above.")
@json_option("One JSON object instead of a table.")
def lag(group: str | None, interval: float, max_lag: int | None, as_json: bool) -> None:
    """Per-partition lag of the engine's consumer group, from the broker's offsets."""
    settings = cli_settings()
    try:
        with kafka_errors(settings):
            before, now = asyncio.run(_sample(settings, group, interval))
    except click.ClickException:
        raise
    except Exception as exc:  # an unreachable broker is a message, not a traceback
        msg = f"cannot read offsets from {settings.broker}: {exc}"
        raise click.ClickException(msg) from None
    earlier = {(r.topic, r.partition): r.lag for r in before}
    rows = [
        {
            "topic": r.topic,
            "partition": r.partition,
            "end": r.end,
            "committed": r.committed,
            "lag": r.lag,
            "trend_per_s": (
                round((r.lag - earlier.get((r.topic, r.partition), r.lag)) / interval, 2)
                if interval > 0
                else None
            ),
        }
        for r in now
    ]
    total = sum(r.lag for r in now)
    over = max_lag is not None and total > max_lag
    if as_json:
        click.echo(dumps({"group": group or settings.app_id, "total": total, "partitions": rows}))
    else:
        click.echo(f"{'topic':<36}{'part':>5}{'end':>10}{'committed':>11}{'lag':>9}{'trend/s':>9}")
        for row in rows:
            committed = "-" if row["committed"] is None else row["committed"]
            trend = "-" if row["trend_per_s"] is None else f"{row['trend_per_s']:+g}"
            click.echo(
                f"{row['topic']:<36}{row['partition']:>5}{row['end']:>10}"
                f"{committed:>11}{row['lag']:>9}{trend:>9}"
            )
        click.echo(f"total lag {total}" + (f" (above {max_lag})" if over else ""))
    if over:
        raise SystemExit(1)


@click.command("customer")
@click.argument("customer_id")
@click.option(
    "--url",
    help="A worker's base URL (default: http://LIFECYCLE_WEB_HOST:LIFECYCLE_WEB_PORT); "
    "any worker answers, the owner of the key is asked for you.",
)
def customer(customer_id: str, url: str | None) -> None:
    """Print one customer's state: stage, scores, pending timers, recent transitions."""
    if not customer_id.strip():
        msg = "a customer id is not empty"
        raise click.BadParameter(msg, param_hint="CUSTOMER_ID")
    settings = cli_settings()
    base = (url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    if not base.startswith(("http://", "https://")):
        msg = f"--url must be http:// or https://, not {base}"
        raise click.BadParameter(msg)
    target = f"{base}/customers/{urllib.parse.quote(customer_id, safe='')}"
    token = settings.api_token
    try:
        request = urllib.request.Request(target)  # noqa: S310 - scheme checked above
        if token:
            request.add_header("Authorization", f"Bearer {token.get_secret_value()}")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - checked
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = _json_or_none(exc.read())
        if not isinstance(answer, dict) or "error" not in answer:
            msg = f"{base} answered HTTP {exc.code} ({exc.reason}), not as a worker does"
            raise click.ClickException(msg) from None
        msg = f"{customer_id}: {answer['error']} (HTTP {exc.code})"
        raise click.ClickException(msg) from None
    except urllib.error.URLError as exc:
        msg = f"no worker answers at {base}: {exc.reason}"
        raise click.ClickException(msg) from None
    except (ValueError, OSError, http.client.HTTPException) as exc:  # a bad URL, no worker
        msg = f"no worker answers at {base}: {type(exc).__name__}: {exc}"
        raise click.ClickException(msg) from None
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))


def _json_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


@click.command("mailer")
def mailer() -> None:
    """Send the triggers as email (the reference consumer of lifecycle.triggers).

    Runs until interrupted; settings LIFECYCLE_SMTP_HOST/PORT and LIFECYCLE_MAILER_*.
    """
    import signal

    from mailer.service import MailerSettings, OutboxError, max_ages, run_mailer

    settings = cli_settings()
    config = MailerSettings(
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        sender=settings.mailer_from,
        group=settings.mailer_group,
        outbox=settings.mailer_outbox,
        templates=settings.mailer_templates,
        publish_bounces=settings.mailer_bounces,
        max_age=max_ages(settings.mailer_max_age),
    )

    async def main() -> dict[str, int]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(
            f"mailer: {settings.topic('triggers')} -> smtp://{config.smtp_host}:{config.smtp_port}"
            f" (group {config.group}, outbox {config.outbox})"
        )
        return await run_mailer(settings, config, stop)

    try:
        with kafka_errors(settings):
            counts = asyncio.run(main())
    except OutboxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("mailer stopped: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
