"""``lifecycle kafka start|stop|status``: the local broker from the command line.

Thin on purpose: every decision lives in ``streams.broker``; this module turns
its results into lines a developer reads (or JSON a script reads) and its
``BrokerError`` into ``Error: ...`` on stderr with exit code 1, no traceback.
"""

from __future__ import annotations

import click

from agents.cli_settings import cli_settings
from schemas.codec import dumps
from streams.broker import BrokerError, BrokerStatus, LocalBroker

__all__ = ["kafka_group"]


@click.group("kafka")
def kafka_group() -> None:
    """Run a local single-node Kafka (KRaft) for development: Java and Maven, no Docker.

    The broker lives in LIFECYCLE_KAFKA_DIR and keeps running after this
    command returns. To use a Kafka you already have instead, skip this and set
    LIFECYCLE_BROKER=host:port.
    """


@kafka_group.command("start")
@click.option(
    "--port",
    type=click.IntRange(1, 65534),
    default=None,
    envvar="LIFECYCLE_KAFKA_PORT",
    show_envvar=True,
    help="Client port on 127.0.0.1 (the controller uses PORT+1). Default: 9092.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=90.0,
    show_default=True,
    help="Seconds to wait for the broker to answer before giving up.",
)
def start_command(port: int | None, timeout: float) -> None:
    """Start the broker (first run fetches the jars and formats storage); no-op if running."""
    settings = cli_settings()
    broker = LocalBroker.from_settings(settings)
    if port is not None:
        broker = LocalBroker(port=port, home=broker.home, jars_dir=broker.jars_dir)
    if not broker.jars_ready():
        click.echo(
            f"Fetching the Kafka jars with Maven into {broker.jars_dir} (first run only)...",
            err=True,
        )
    try:
        status = broker.start(timeout=timeout)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    if status.start_seconds is None:
        click.echo(f"Kafka is already running at {status.bootstrap} (pid {status.pid}).")
    else:
        first = ", storage formatted on first start" if status.formatted else ""
        click.echo(
            f"Kafka {status.kafka_version} is running at {status.bootstrap} (pid {status.pid}), "
            f"started in {status.start_seconds:.1f} s{first}."
        )
    _echo_paths(status)
    if settings.broker.strip() != status.bootstrap:
        click.echo(
            f"Note: LIFECYCLE_BROKER is {settings.broker}; set "
            f"LIFECYCLE_BROKER={status.bootstrap} for the engine to use this broker."
        )
    click.echo("Stop it with: lifecycle kafka stop")


@kafka_group.command("stop")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a clean shutdown before killing the broker.",
)
def stop_command(timeout: float) -> None:
    """Stop the broker started from LIFECYCLE_KAFKA_DIR; its data is kept for the next start."""
    broker = LocalBroker.from_settings(cli_settings())
    before = broker.status()
    try:
        stopped = broker.stop(timeout=timeout)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    if stopped:
        click.echo(f"Kafka stopped (was pid {before.pid} at {before.bootstrap}).")
    else:
        click.echo(f"Kafka is not running (home {broker.home}).")


@kafka_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for programs.")
def status_command(as_json: bool) -> None:
    """Say whether the local broker runs, and where its address, log and data are."""
    status = LocalBroker.from_settings(cli_settings()).status()
    if as_json:
        click.echo(dumps(status.to_dict()).decode())
        return
    if status.running:
        click.echo(f"Kafka {status.kafka_version}: running (pid {status.pid})")
        click.echo(f"  bootstrap: {status.bootstrap}")
    else:
        click.echo(f"Kafka {status.kafka_version}: stopped")
        click.echo(f"  bootstrap: {status.bootstrap} (when started)")
    _echo_paths(status)


def _echo_paths(status: BrokerStatus) -> None:
    click.echo(f"  log:       {status.log_path}")
    click.echo(f"  data:      {status.data_dir}")
    click.echo(f"  jars:      {status.jars_dir}")
