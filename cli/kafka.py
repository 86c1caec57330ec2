"""``lifecycle kafka start|stop|status``: the local broker from the command line.

Thin on purpose: every decision lives in ``streams.broker``; this module turns
its results into lines a developer reads (or JSON a script reads) and its
``BrokerError`` into ``Error: ...`` on stderr with exit code 1, no traceback.
"""

from __future__ import annotations

import click

from cli.options import json_option, timeout_option
from cli.settings import cli_settings
from schemas.codec import dumps
from streams.broker import BrokerError, BrokerStatus, LocalBroker, SaslUser
from streams.settings import Settings

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
@timeout_option(90.0, "Seconds to wait for the broker to answer before giving up.")
@click.option(
    "--tls",
    is_flag=True,
    help="Listen with TLS (SSL; SASL_SSL with --sasl-user), the certificate signed by a "
    "throwaway CA made in LIFECYCLE_KAFKA_DIR/tls/ and kept there; clients trust its "
    "ca.pem (LIFECYCLE_BROKER_SSL_CAFILE). "
    "Default: on when LIFECYCLE_BROKER_SECURITY_PROTOCOL is SSL or SASL_SSL.",
)
@click.option(
    "--sasl-user",
    help="Take SASL logins (SASL_PLAINTEXT, or SASL_SSL with --tls) and accept only this "
    "user (mechanism PLAIN). Default: LIFECYCLE_BROKER_SASL_USERNAME when the engine is "
    "set to SASL_PLAINTEXT or SASL_SSL with PLAIN; otherwise no login.",
)
@click.option(
    "--sasl-password",
    help="That user's password. Default: LIFECYCLE_BROKER_SASL_PASSWORD, else a prompt "
    "(a flag shows in the process list: prefer the variable or the prompt).",
)
def start_command(
    port: int | None, timeout: float, tls: bool, sasl_user: str | None, sasl_password: str | None
) -> None:
    """Start the broker (first run fetches the jars and formats storage); no-op if running."""
    settings = cli_settings()
    broker = LocalBroker.from_settings(settings)
    try:
        sasl = _sasl_user(settings, sasl_user, sasl_password) or broker.sasl
    except BrokerError as exc:
        raise click.BadParameter(str(exc), param_hint="--sasl-user/--sasl-password") from None
    broker = LocalBroker(
        port=broker.port if port is None else port,
        home=broker.home,
        jars_dir=broker.jars_dir,
        sasl=sasl,
        tls=tls or broker.tls,
    )
    if not broker.jars_ready():
        click.echo(
            f"Fetching the Kafka jars with Maven into {broker.jars_dir} (first run only)...",
            err=True,
        )
    try:
        status = broker.start(timeout=timeout)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    login = f" with {status.security_protocol}" if status.security_protocol != "PLAINTEXT" else ""
    login += f" (PLAIN, user {sasl.username})" if sasl else ""
    if status.start_seconds is None:
        click.echo(f"Kafka is already running at {status.bootstrap}{login} (pid {status.pid}).")
    else:
        first = ", storage formatted on first start" if status.formatted else ""
        click.echo(
            f"Kafka {status.kafka_version} is running at {status.bootstrap}{login} "
            f"(pid {status.pid}), started in {status.start_seconds:.1f} s{first}."
        )
    _echo_paths(status)
    if settings.broker.strip() != status.bootstrap:
        click.echo(
            f"Note: LIFECYCLE_BROKER is {settings.broker}; set "
            f"LIFECYCLE_BROKER={status.bootstrap} for the engine to use this broker."
        )
    missing = _engine_settings(settings, status, sasl)
    if missing:
        click.echo(f"Note: for the engine to connect, set {' '.join(missing)}.")
    elif status.security_protocol == "PLAINTEXT" != settings.broker_security_protocol:
        click.echo(
            "Note: this broker takes no login (PLAINTEXT), but LIFECYCLE_BROKER_SECURITY_PROTOCOL "
            f"is {settings.broker_security_protocol}."
        )
    click.echo("Stop it with: lifecycle kafka stop")


def _engine_settings(settings: Settings, status: BrokerStatus, sasl: SaslUser | None) -> list[str]:
    """The ``LIFECYCLE_BROKER_*`` settings the engine still needs to reach this broker, as
    NAME=VALUE (the password by name only: it is never printed)."""
    if status.security_protocol == "PLAINTEXT":
        return []
    wanted: dict[str, str] = {"LIFECYCLE_BROKER_SECURITY_PROTOCOL": status.security_protocol}
    if status.ssl_cafile is not None:
        wanted["LIFECYCLE_BROKER_SSL_CAFILE"] = str(status.ssl_cafile.resolve())
    if sasl is not None:
        wanted["LIFECYCLE_BROKER_SASL_MECHANISM"] = "PLAIN"
        wanted["LIFECYCLE_BROKER_SASL_USERNAME"] = sasl.username
    cafile = settings.broker_ssl_cafile
    current = {
        "LIFECYCLE_BROKER_SECURITY_PROTOCOL": settings.broker_security_protocol,
        "LIFECYCLE_BROKER_SSL_CAFILE": str(cafile.resolve() if cafile else None),
        "LIFECYCLE_BROKER_SASL_MECHANISM": settings.broker_sasl_mechanism,
        "LIFECYCLE_BROKER_SASL_USERNAME": str(settings.broker_sasl_username),
    }
    missing = [f"{name}={value}" for name, value in wanted.items() if current[name] != value]
    password = settings.broker_sasl_password
    if sasl is not None and (password is None or password.get_secret_value() != sasl.password):
        missing.append("LIFECYCLE_BROKER_SASL_PASSWORD")
    return missing


def _sasl_user(settings: Settings, user: str | None, password: str | None) -> SaslUser | None:
    """The login the flags ask for; the password falls back to the settings, then a prompt."""
    if user is None:
        if password is not None:
            msg = "--sasl-password needs --sasl-user"
            raise BrokerError(msg)
        return None
    if password is None and settings.broker_sasl_password is not None:
        password = settings.broker_sasl_password.get_secret_value()
    if password is None:
        password = str(click.prompt(f"SASL password for {user}", hide_input=True))
    return SaslUser(user, password)


@kafka_group.command("stop")
@timeout_option(30.0, "Seconds to wait for a clean shutdown before killing the broker.")
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
@json_option("Print one JSON object, for programs.")
def status_command(as_json: bool) -> None:
    """Say whether the local broker runs, and where its address, log and data are."""
    status = LocalBroker.from_settings(cli_settings()).status()
    if as_json:
        click.echo(dumps(status.to_dict()).decode())
        return
    if status.running:
        click.echo(f"Kafka {status.kafka_version}: running (pid {status.pid})")
        click.echo(f"  bootstrap: {status.bootstrap} ({status.security_protocol})")
    else:
        click.echo(f"Kafka {status.kafka_version}: stopped")
        click.echo(f"  bootstrap: {status.bootstrap} (when started)")
    _echo_paths(status)


def _echo_paths(status: BrokerStatus) -> None:
    if status.ssl_cafile is not None:
        click.echo(f"  CA cert:   {status.ssl_cafile} (LIFECYCLE_BROKER_SSL_CAFILE)")
    click.echo(f"  log:       {status.log_path}")
    click.echo(f"  data:      {status.data_dir}")
    click.echo(f"  jars:      {status.jars_dir}")
