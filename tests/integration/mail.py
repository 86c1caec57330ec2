"""The reference mailer as a user runs it, and an SMTP server that keeps what it gets.

Shared by the mailer's own test and the crash test, which runs the mailer
beside a worker that is killed again and again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from harness.engine import ROOT, settings_env
from streams.settings import Settings


class Inbox:
    """An aiosmtpd handler that keeps every message with the time it arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, Message]] = []
        self.recipients: list[str] = []
        """Every envelope recipient accepted, as SMTP gave it."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address.startswith("refuse"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        self.recipients.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.received.append((time.time(), message_from_bytes(envelope.content)))
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for _, m in self.received]


class Mailer:
    def __init__(self, settings: Settings, port: int, tmp: Path) -> None:
        self.outbox = tmp / "outbox.sqlite3"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
            **settings_env(settings),
            "LIFECYCLE_SMTP_PORT": str(port),
            "LIFECYCLE_MAILER_OUTBOX": str(self.outbox),
            "LIFECYCLE_MAILER_GROUP": f"{settings.app_id}-mailer",
            "LIFECYCLE_MAILER_BOUNCES": "true",
        }
        self.log = tmp / "mailer.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mailer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "mailer"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def outbox_ids(self, status: str) -> set[str]:
        """The trigger_ids the mailer's outbox holds with ``status``."""
        with sqlite3.connect(self.outbox) as db:
            rows = db.execute("SELECT trigger_id FROM mails WHERE status = ?", (status,))
            return {row[0] for row in rows}

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the outbox as it was at that instant."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
