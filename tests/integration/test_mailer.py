"""``lifecycle mailer`` end to end: triggers on the real broker, mail at a real SMTP server.

The SMTP server is aiosmtpd, started by the test; the mailer runs as a user
runs it, as a child process, and is restarted mid-stream.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from schemas.codec import encode_model
from schemas.records import Campaign, Stage, Trigger
from streams.broker import find_free_port
from streams.settings import Settings
from tests.integration.engine import (
    ROOT,
    collect,
    create_topics,
    publish_raw,
    settings_env,
    unique_settings,
)


class Inbox:
    """An aiosmtpd handler that keeps every message with the time it arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, Message]] = []

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address.startswith("refuse"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.received.append((time.time(), message_from_bytes(envelope.content)))
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for _, m in self.received]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = find_free_port(1)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def trigger(n: int, *, holdout: bool = False, delay: float = 0.0, **payload: Any) -> Trigger:
    now = datetime.now(UTC)
    return Trigger(
        trigger_id=f"mail-{n}",
        customer_id=f"cust-{n}",
        campaign=Campaign.WELCOME,
        channel="email",
        stage=Stage.LEAD,
        created_at=now,
        send_after=now + timedelta(seconds=delay),
        variant="A",
        holdout=holdout,
        payload={"email": f"cust-{n}@mail.example", "first_name": f"N{n}", **payload},
    )


def publish_triggers(settings: Settings, triggers: list[Trigger]) -> None:
    topic = settings.topic("triggers")
    publish_raw(settings, [(topic, t.customer_id.encode(), encode_model(t)) for t in triggers])


class Mailer:
    def __init__(self, settings: Settings, port: int, tmp: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
            **settings_env(settings),
            "LIFECYCLE_SMTP_PORT": str(port),
            "LIFECYCLE_MAILER_OUTBOX": str(tmp / "outbox.sqlite3"),
            "LIFECYCLE_MAILER_GROUP": f"{settings.app_id}-mailer",
            "LIFECYCLE_MAILER_BOUNCES": "true",
        }
        self.log = tmp / "mailer.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mailer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agents.cli", "mailer"],
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


def wait_for(check: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_mailer_sends_each_trigger_once_after_send_after_and_never_holdouts(
    kafka_bootstrap: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    now_mail = trigger(1)
    later = trigger(3, delay=8.0)
    publish_triggers(
        settings,
        [now_mail, trigger(2, holdout=True), later, now_mail, trigger(4, email=None)],
    )
    mailer = Mailer(settings, port, tmp_path).start()
    try:
        assert wait_for(lambda: "<mail-1@lifecycle>" in inbox.ids()), mailer.log.read_text()
        time.sleep(1.0)
        assert inbox.ids() == ["<mail-1@lifecycle>"]  # the holdout and the delayed mail wait
        mailer.stop()  # restart mid-stream, with a delayed mail still pending
        publish_triggers(settings, [trigger(5), now_mail, trigger(6, email="refuse@mail.example")])
        mailer.start()
        assert wait_for(lambda: len(inbox.received) >= 3, timeout=40), mailer.log.read_text()
        time.sleep(2.0)  # nothing more must come
    finally:
        mailer.stop()
    assert sorted(inbox.ids()) == ["<mail-1@lifecycle>", "<mail-3@lifecycle>", "<mail-5@lifecycle>"]
    arrived = {str(m["Message-ID"]): at for at, m in inbox.received}
    assert arrived["<mail-3@lifecycle>"] >= later.send_after.timestamp()
    first = next(m for _, m in inbox.received if m["Message-ID"] == "<mail-1@lifecycle>")
    assert first["To"] == "cust-1@mail.example"
    assert first["Subject"] == "Welcome, N1!"
    assert "@mail.example" not in mailer.log.read_text()  # no personal data in its log
    # The refused recipient came back as a bounce, an engagement event the engine reads.
    bounces = collect(settings, ["engagement"], expected=1, quiet=1)
    assert [(b["key"], b["value"]["action"], b["value"]["trigger_id"]) for b in bounces] == [
        ("cust-6", "bounce", "mail-6")
    ]
