"""Settings for the command line: a bad ``LIFECYCLE_*`` value is a user error, not a crash."""

from __future__ import annotations

import click
from pydantic import ValidationError

from streams.settings import Settings

__all__ = ["cli_settings"]


def cli_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        msg = f"invalid LIFECYCLE_* setting:\n{exc}"
        raise click.ClickException(msg) from None
