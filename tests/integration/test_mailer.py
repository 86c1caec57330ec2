"""``lifecycle mailer`` end to end: triggers on the real broker, mail at a real SMTP server.

The SMTP server is aiosmtpd, started by the test; the mailer runs as a user
runs it, as a child process, and is restarted mid-stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.engine import (
    ROOT,
    collect,
    create_topics,
    publish_raw,
    unique_settings,
)
from schemas.codec import encode_model
from schemas.records import Campaign, Stage, Trigger
from streams.settings import Settings
from tests.integration.mail import Inbox, Mailer


def trigger(
    n: int,
    *,
    holdout: bool = False,
    delay: float = 0.0,
    campaign: Campaign = Campaign.WELCOME,
    age: timedelta = timedelta(0),
    **payload: Any,
) -> Trigger:
    """A trigger made ``age`` ago, due ``delay`` seconds after that."""
    now = datetime.now(UTC) - age
    return Trigger(
        trigger_id=f"mail-{n}",
        customer_id=f"cust-{n}",
        campaign=campaign,
        flow=campaign,
        step="0",
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


def wait_for(check: Any, timeout: float = 300.0) -> bool:
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
    later = trigger(3, delay=15.0)  # still pending at the restart, on any machine
    publish_triggers(
        settings,
        [now_mail, trigger(2, holdout=True), later, now_mail, trigger(4, email=None)],
    )
    mailer = Mailer(settings, port, tmp_path).start()
    try:
        assert wait_for(lambda: "<mail-1@lifecycle>" in inbox.ids()), mailer.log.read_text()
        assert "<mail-2@lifecycle>" not in inbox.ids()  # the holdout is never sent
        mailer.stop()  # restart mid-stream, with a delayed mail still pending
        publish_triggers(settings, [trigger(5), now_mail, trigger(6, email="refuse@mail.example")])
        mailer.start()
        assert wait_for(lambda: len(inbox.received) >= 3, timeout=300), mailer.log.read_text()
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


def test_mailer_stores_triggers_older_than_their_max_age_as_expired_and_sends_none(
    kafka_bootstrap: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """A new mailer reading last year's backlog: only what is still news goes out."""
    inbox, port = smtp
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    hours = timedelta(hours=1)
    backlog = [
        trigger(1, campaign=Campaign.CART_ABANDONMENT, age=25 * hours),  # a day late
        trigger(2, campaign=Campaign.WIN_BACK, age=8 * 24 * hours),
        trigger(3, campaign=Campaign.WELCOME, age=2 * 24 * hours),  # within its 7 days
        trigger(4, campaign=Campaign.CART_ABANDONMENT, age=2 * hours),
        trigger(5, campaign=Campaign.BROWSE_ABANDONMENT, age=3 * hours),  # over its setting
        trigger(6, campaign=Campaign.REVIEW_REQUEST, age=400 * 24 * hours),
    ]
    publish_triggers(settings, backlog)
    mailer = Mailer(settings, port, tmp_path)
    group = mailer.env["LIFECYCLE_MAILER_GROUP"]
    mailer.env["LIFECYCLE_MAILER_MAX_AGE__BROWSE_ABANDONMENT"] = "7200"
    mailer.start()
    try:
        assert wait_for(lambda: len(inbox.received) >= 2), mailer.log.read_text()
        assert wait_for(lambda: len(mailer.outbox_ids("expired")) >= 4), mailer.log.read_text()
        time.sleep(2.0)  # nothing more must come
    finally:
        mailer.stop()
    assert sorted(inbox.ids()) == ["<mail-3@lifecycle>", "<mail-4@lifecycle>"]
    assert mailer.outbox_ids("expired") == {"mail-1", "mail-2", "mail-5", "mail-6"}
    # Its lag, on the topic it reads, as ops watch it.
    done = subprocess.run(
        [sys.executable, "-m", "cli", "lag", "--json", "--interval", "0", "--group", group],
        cwd=ROOT,
        env=mailer.env,
        capture_output=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert {row["topic"] for row in report["partitions"]} == {settings.topic("triggers")}
    assert report["total"] == 0
    assert sum(row["end"] for row in report["partitions"]) == len(backlog)
    log = mailer.log.read_text()
    assert "mailer stopped: expired 4, sent 2" in log
    assert "@mail.example" not in log


def test_one_bad_trigger_never_stops_the_mailer_nor_the_mails_behind_it(
    kafka_bootstrap: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """Addresses the engine accepts (any text with one ``@``) that are not one plain
    mailbox, a name with a carriage return, a shop's template with a syntax error: each
    is that trigger's problem, stored with its reason, and the good mails go out."""
    inbox, port = smtp
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    own = tmp_path / "templates"
    own.mkdir()
    (own / "broken_campaign.txt").write_text("Subject: {{ first_name\nHello\n")
    publish_triggers(
        settings,
        [
            trigger(1, email="(x)@y.example"),
            trigger(2, email="a,b@mail.example"),
            trigger(3, email="x:victim@mail.example"),
            trigger(4, first_name="Eve\rMallory"),
            trigger(5, campaign="broken_campaign"),  # type: ignore[arg-type]
            trigger(6),
        ],
    )
    mailer = Mailer(settings, port, tmp_path)
    mailer.env["LIFECYCLE_MAILER_TEMPLATES"] = str(own)
    mailer.start()
    try:
        assert wait_for(lambda: len(inbox.received) >= 2), mailer.log.read_text()
        time.sleep(2.0)  # nothing more must come
        assert mailer.process is not None
        assert mailer.process.poll() is None  # still running
    finally:
        mailer.stop()
    assert sorted(inbox.ids()) == ["<mail-4@lifecycle>", "<mail-6@lifecycle>"]
    assert sorted(inbox.recipients) == ["cust-4@mail.example", "cust-6@mail.example"]
    eve = next(m for _, m in inbox.received if m["Message-ID"] == "<mail-4@lifecycle>")
    assert eve["Subject"] == "Welcome, Eve Mallory!"
    assert mailer.outbox_ids("bad_address") == {"mail-1", "mail-2", "mail-3"}
    assert mailer.outbox_ids("bad_template") == {"mail-5"}
    assert "Traceback" not in mailer.log.read_text()
