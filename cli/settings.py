"""Settings for the command line: a bad ``LIFECYCLE_*`` value is a user error, not a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from streams.kafka import BrokerUnreachableError, explained
from streams.settings import Settings, TopicNames

__all__ = ["cli_settings", "kafka_errors", "settings_problems"]


def cli_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(settings_problems(exc)) from None
    except SettingsError as exc:  # a nested setting's value that is not JSON
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "?"
        msg = f"invalid settings: LIFECYCLE_{field.upper()}: not valid JSON"
        raise click.ClickException(msg) from None


def settings_problems(exc: ValidationError) -> str:
    """One line per bad value, naming its variable (``LIFECYCLE_WEB_PORT: ...``); a
    check across settings names its variables itself. No value is repeated: one may be
    a password."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        names = [str(part) for part in error["loc"] if not isinstance(part, int)]
        if error["type"] == "extra_forbidden" and names[:1] == ["topics"]:
            known = ", ".join(name.upper() for name in TopicNames.model_fields)
            message = f"no such topic name (one of {known})"
        if names:
            message = f"LIFECYCLE_{'__'.join(names).upper()}: {message}"
        lines.append(message)
    return "invalid settings: " + "; ".join(lines)


@contextlib.contextmanager
def kafka_errors(settings: Settings) -> Iterator[None]:
    """A broker that cannot be reached or refuses the login is a message, not a traceback."""
    try:
        with explained(settings):
            yield
    except BrokerUnreachableError as exc:
        raise click.ClickException(str(exc)) from None
