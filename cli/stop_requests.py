"""One orderly stop for a command that starts processes: signals and a dead output alike.

``lifecycle dev`` starts a broker and a worker in sessions of their own, so
only the command itself can stop them. It must get the chance whatever ends
the run: Ctrl-C (SIGINT to the whole foreground process group), a closed
terminal (SIGHUP), ``kill`` or a service manager (SIGTERM), or the reader of
its output going away (``| tee`` killed by the same Ctrl-C, so every later
write fails with EPIPE, or EIO on a terminal that is gone). Each of these
becomes one request to stop; the command then stops what it started and
exits, and further signals during that clean-up are only noted.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

import click

__all__ = ["STOP_SIGNALS", "Console", "StopRequests"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequests:
    """Turns SIGINT, SIGTERM and SIGHUP into one stop request while installed (a ``with``).

    Outside an event loop the first request raises ``KeyboardInterrupt`` where
    the command is (starting the broker, creating topics), so its ``finally``
    blocks stop what was started so far. Inside a loop (``waking``) it sets the
    loop's stop event instead. During clean-up (``shielded``) nothing is raised:
    a second Ctrl-C must not cut the clean-up short and leave the broker running.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._wake: Callable[[], object] | None = None
        self._raising = True
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> StopRequests:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signal.Signals(signum).name)

    def request(self, reason: str) -> None:
        """Ask to stop; only the first request counts and, outside a loop, interrupts."""
        first = self.reason is None
        if first:
            self.reason = reason
        if self._wake is not None:
            self._wake()
        elif first and self._raising:
            raise KeyboardInterrupt(reason)

    @contextlib.contextmanager
    def waking(self, wake: Callable[[], object]) -> Iterator[None]:
        """While inside, a request calls ``wake`` (thread- and signal-safe, e.g.
        ``loop.call_soon_threadsafe(stop.set)``) instead of raising."""
        self._wake = wake
        try:
            if self.requested:
                wake()
            yield
        finally:
            self._wake = None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A request inside is raised only on leaving: for a step that must not be cut in
        two, like starting a child process and taking note of it."""
        raising, self._raising = self._raising, False
        before = self.reason
        try:
            yield
        finally:
            self._raising = raising
        if before is None and self.reason is not None and raising:
            raise KeyboardInterrupt(self.reason)

    def shield(self) -> None:
        """From now on requests are only noted: the clean-up runs to its end."""
        self._raising = False


class Console:
    """``click.echo`` that survives its reader: a dead pipe or terminal becomes a stop request.

    After the first failed write, stdout and stderr point at /dev/null, so
    later lines, log records and the interpreter's final flush cannot fail
    again (a failing flush at exit would also change the exit code).
    """

    def __init__(self, stops: StopRequests) -> None:
        self.stops = stops
        self.dead = False

    def echo(self, text: str, *, err: bool = False) -> None:
        if self.dead:
            return
        try:
            click.echo(text, err=err)
        except OSError:  # BrokenPipeError (EPIPE), or EIO from a terminal that is gone
            self._reader_gone()

    def check(self) -> None:
        """Notice a reader that went away while nothing was written (the counts stood still).

        On Linux the write end of a pipe whose reader is gone polls as POLLERR,
        and a terminal that hung up as POLLHUP; a file never does.
        """
        if self.dead:
            return
        poller = select.poll()
        poller.register(1, select.POLLOUT)
        events = dict(poller.poll(0)).get(1, 0)
        if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
            self._reader_gone()

    def _reader_gone(self) -> None:
        self.dead = True
        _silence_output()
        self.stops.request("output closed")


def _silence_output() -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)
