"""Settings for the command line: a bad ``LIFECYCLE_*`` value is a user error, not a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from pydantic import ValidationError

from streams.kafka import BrokerUnreachableError, explained
from streams.settings import Settings

__all__ = ["cli_settings", "kafka_errors"]


def cli_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        msg = f"invalid LIFECYCLE_* setting:\n{exc}"
        raise click.ClickException(msg) from None


@contextlib.contextmanager
def kafka_errors(settings: Settings) -> Iterator[None]:
    """A broker that cannot be reached or refuses the login is a message, not a traceback."""
    try:
        with explained(settings):
            yield
    except BrokerUnreachableError as exc:
        raise click.ClickException(str(exc)) from None
