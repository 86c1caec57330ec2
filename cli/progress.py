"""Progress of long commands on stderr: a live line on a terminal, plain lines elsewhere.

stdout stays the command's data (backtest records, YAML, JSON), so progress
never mixes with what a script reads.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import click

__all__ = ["Progress"]


class Progress:
    """``update(done)`` as often as you like; at most one line every ``every`` seconds."""

    def __init__(
        self,
        label: str,
        total: int | None,
        enabled: bool | None = None,
        every: float = 0.5,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.enabled = self.tty if enabled is None else enabled
        self.label = label
        self.total = total
        self.every = every
        self.started = time.monotonic()
        self.last = 0.0
        self.done = 0

    def _line(self) -> str:
        rate = self.done / max(1e-9, time.monotonic() - self.started)
        if self.total:
            share = 100 * self.done / self.total
            return f"{self.label}: {self.done}/{self.total} ({share:.0f}%), {rate:,.0f}/s"
        return f"{self.label}: {self.done}, {rate:,.0f}/s"

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        if self.tty:
            click.echo(f"\r{self._line()}\033[K", nl=False, err=True)
        else:
            click.echo(self._line(), err=True)

    def finish(self) -> None:
        if self.enabled:
            self.last = 0.0
            self.update(self.done)
            if self.tty:
                click.echo("", err=True)
