"""The reference mailer's own rules: what to send, which template, a durable outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mailer.service import (
    DEFAULT_MAX_AGE,
    MailerSettings,
    Outbox,
    Templates,
    _send_due,
    max_ages,
    message_for,
    plan,
    read_trigger,
)
from schemas.codec import dumps, encode_model, loads
from schemas.records import Campaign, Stage, Trigger
from streams.broker import find_free_port
from streams.settings import Settings

AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def trigger(n: int = 1, **fields: Any) -> Trigger:
    base: dict[str, Any] = {
        "trigger_id": f"t{n}",
        "customer_id": "c1",
        "campaign": Campaign.WELCOME,
        "flow": "welcome",
        "step": "0",
        "channel": "email",
        "stage": Stage.LEAD,
        "created_at": AT,
        "send_after": AT,
        "variant": "A",
        "holdout": False,
        "payload": {"email": "c1@mail.example", "first_name": "Ada", "locale": "de-DE"},
    }
    return Trigger.model_validate(base | fields)


def send_due(
    outbox: Outbox, path: Path, templates: Path | None = None, port: int | None = None
) -> None:
    """One round of the mailer's sending, to ``port`` (by default no SMTP server listens)."""
    config = MailerSettings(
        smtp_host="127.0.0.1",
        smtp_port=find_free_port(1) if port is None else port,
        sender="shop@shop.example",
        group="g",
        outbox=path,
        templates=templates,
        publish_bounces=False,
    )
    asyncio.run(_send_due(outbox, Templates(templates), config, None, Settings()))


def test_plan_skips_holdouts_and_missing_addresses() -> None:
    assert plan(trigger()) == "send"
    assert plan(trigger(holdout=True)) == "held_out"
    assert plan(trigger(payload={"first_name": "Ada"})) == "no_address"


def test_templates_fall_back_from_locale_to_language_to_english(tmp_path: Path) -> None:
    templates = Templates()
    assert templates.render(trigger())[0] == "Willkommen, Ada!"  # de-DE -> welcome.de.txt
    english = trigger(payload={"email": "x@mail.example", "locale": "fr-FR"})
    assert templates.render(english)[0] == "Welcome!"
    (tmp_path / "welcome.txt").write_text("Subject: Hi {{ first_name }}\nbody\n")
    mine = Templates(tmp_path)
    assert mine.render(trigger(payload={"first_name": "Bo", "email": "b@x"})) == ("Hi Bo", "body\n")


def test_every_campaign_has_a_template() -> None:
    templates = Templates()
    for campaign in Campaign:
        subject, body = templates.render(trigger(campaign=campaign, payload={"email": "e@x"}))
        assert subject
        assert body


def test_message_id_comes_from_the_trigger_id() -> None:
    message = message_for(trigger(7), Templates(), "shop@shop.example")
    assert message["Message-ID"] == "<t7@lifecycle>"
    assert message["To"] == "c1@mail.example"
    assert message["X-Lifecycle-Campaign"] == "welcome"


def test_outbox_keeps_each_trigger_once_and_releases_it_when_due(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    later = trigger(2, send_after=AT + timedelta(hours=1))
    assert outbox.add(trigger(1), "pending")
    assert outbox.add(later, "pending")
    assert not outbox.add(trigger(1), "pending")  # the same trigger_id again
    outbox.commit()
    assert [t.trigger_id for t in outbox.due(AT.timestamp())] == ["t1"]
    outbox.mark("t1", "sent")
    again = Outbox(tmp_path / "outbox.sqlite3")  # a restart reads the same file
    assert [t.trigger_id for t in again.due((AT + timedelta(hours=2)).timestamp())] == ["t2"]
    assert again.counts() == {"pending": 1, "sent": 1}


def test_triggers_expire_after_their_campaigns_max_age() -> None:
    cart = trigger(campaign=Campaign.CART_ABANDONMENT)
    win_back = trigger(campaign=Campaign.WIN_BACK)
    assert plan(cart, AT + timedelta(hours=23)) == "send"
    assert plan(cart, AT + timedelta(hours=25)) == "expired"
    assert plan(trigger(campaign=Campaign.BROWSE_ABANDONMENT), AT + timedelta(hours=25)) == (
        "expired"
    )
    assert plan(win_back, AT + timedelta(days=6)) == "send"
    assert plan(win_back, AT + timedelta(days=8)) == "expired"
    assert plan(win_back) == "send"  # no clock, no expiry
    # Measured from send_after: a mail held for quiet hours is not stale when it is due.
    held = trigger(campaign=Campaign.CART_ABANDONMENT, send_after=AT + timedelta(hours=10))
    assert plan(held, AT + timedelta(hours=30)) == "send"
    assert plan(held, AT + timedelta(hours=35)) == "expired"
    # Holdouts stay holdouts (lift counts them); an expired mail needs no address.
    assert plan(trigger(holdout=True), AT + timedelta(days=30)) == "held_out"
    assert plan(trigger(payload={}), AT + timedelta(days=30)) == "expired"


def test_max_age_settings_override_the_defaults_per_campaign(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert DEFAULT_MAX_AGE[Campaign.CART_ABANDONMENT] == timedelta(hours=24)
    assert DEFAULT_MAX_AGE[Campaign.BROWSE_ABANDONMENT] == timedelta(hours=24)
    others = {c for c in Campaign if "abandonment" not in c.value}
    assert {DEFAULT_MAX_AGE[c] for c in others} == {timedelta(days=7)}
    monkeypatch.setenv("LIFECYCLE_MAILER_MAX_AGE__CART_ABANDONMENT", "7200")
    monkeypatch.setenv("LIFECYCLE_MAILER_MAX_AGE__WIN_BACK", "1209600")
    ages = max_ages(Settings().mailer_max_age)
    assert ages[Campaign.CART_ABANDONMENT] == timedelta(hours=2)
    assert ages[Campaign.WIN_BACK] == timedelta(days=14)
    assert ages[Campaign.WELCOME] == timedelta(days=7)
    monkeypatch.setenv("LIFECYCLE_MAILER_MAX_AGE__CART", "7200")  # not a campaign: refused
    with pytest.raises(ValidationError):
        Settings()


def test_a_pending_mail_that_waited_too_long_expires_unsent(tmp_path: Path) -> None:
    """SMTP down for days: the cart reminder waiting in the outbox is not sent late."""
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    old = datetime.now(UTC) - timedelta(hours=30)
    outbox.add(
        trigger(1, campaign=Campaign.CART_ABANDONMENT, created_at=old, send_after=old), "pending"
    )
    outbox.commit()
    closed = find_free_port(1)  # nothing listens: a send attempt would leave it pending
    config = MailerSettings(
        smtp_host="127.0.0.1",
        smtp_port=closed,
        sender="shop@shop.example",
        group="g",
        outbox=tmp_path / "outbox.sqlite3",
        templates=None,
        publish_bounces=False,
    )
    asyncio.run(_send_due(outbox, Templates(), config, None, Settings()))
    assert outbox.counts() == {"expired": 1}


def test_only_email_triggers_are_mailed() -> None:
    for channel in ("sms", "push", "webhook"):
        assert plan(trigger(channel=channel)) == "other_channel"
    assert plan(trigger(channel="webhook", holdout=True)) == "held_out"


def test_a_shops_own_campaign_gets_the_default_max_age() -> None:
    own = trigger(campaign="replenish_coffee", flow="replenish_coffee", step="1")
    assert plan(own, AT + timedelta(days=6)) == "send"
    assert plan(own, AT + timedelta(days=8)) == "expired"
    assert plan(own, AT + timedelta(hours=3), max_ages({"replenish_coffee": 7200})) == "expired"


def test_a_trigger_an_older_engine_wrote_reads_as_its_campaigns_flow() -> None:
    body = loads(encode_model(trigger()))
    del body["flow"], body["step"]
    old = read_trigger(dumps(body))
    assert (old.flow, old.step) == ("welcome", "0")
    assert read_trigger(encode_model(trigger())) == trigger()
    with pytest.raises(ValidationError):
        read_trigger(dumps({**body, "campaign": "Not A Name"}))
    with pytest.raises(ValidationError):
        read_trigger(b"[]")


def test_a_campaign_without_a_template_is_stored_not_sent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    now = datetime.now(UTC)
    own = trigger(1, campaign="replenish_coffee", created_at=now, send_after=now)
    outbox.add(own, "pending")
    outbox.commit()
    send_due(outbox, tmp_path / "outbox.sqlite3")
    assert outbox.counts() == {"no_template": 1}


@pytest.mark.parametrize(
    "address",
    [
        "(x)@y.example",
        "a,b@mail.example",
        "x:victim@mail.example",
        "Ada <a@mail.example>",
        "a b@mail.example",
        '"a"@mail.example',
        "a@mail.example\r\nBcc: b@mail.example",
        "a@b@c",
    ],
)
def test_an_address_that_is_not_one_plain_mailbox_is_never_mailed(address: str) -> None:
    """The engine accepts any text with one ``@`` as an email; a header reads some of it
    as several recipients, a group or a comment."""
    assert plan(trigger(payload={"email": address})) == "bad_address"


@pytest.mark.parametrize("address", ["c1@mail.example", "a.b+tag@sub.mail.example", "ä@b.example"])
def test_a_plain_mailbox_is_mailed(address: str) -> None:
    assert plan(trigger(payload={"email": address})) == "send"


def test_control_characters_never_reach_the_subject() -> None:
    payload = {"email": "c1@mail.example", "first_name": "Eve\r\nBcc: x@mail.example"}
    message = message_for(trigger(payload=payload), Templates(), "shop@shop.example")
    assert message["Subject"] == "Welcome, Eve Bcc: x@mail.example!"
    assert message["Bcc"] is None


def test_a_template_that_does_not_render_is_stored_not_sent(tmp_path: Path) -> None:
    own = tmp_path / "templates"
    own.mkdir()
    (own / "broken.txt").write_text("Subject: {{ first_name\n")
    (own / "raises.txt").write_text("Subject: {{ 1 // 0 }}\n")
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    now = datetime.now(UTC)
    for n, campaign in enumerate(("broken", "raises")):
        outbox.add(trigger(n, campaign=campaign, created_at=now, send_after=now), "pending")
    outbox.add(
        trigger(3, created_at=now, send_after=now, payload={"email": "a,b@x.example"}), "pending"
    )
    outbox.commit()
    send_due(outbox, tmp_path / "outbox.sqlite3", own)
    assert outbox.counts() == {"bad_template": 2, "bad_address": 1}


def test_a_mail_the_server_refuses_for_good_does_not_hold_up_the_rest(tmp_path: Path) -> None:
    """A 5xx to one message's data (too large, say) fails that mail; the mails behind it
    go out. A 4xx leaves it pending for the next round."""
    from aiosmtpd.controller import Controller

    class Server:
        def __init__(self) -> None:
            self.got: list[str] = []

        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
            if b"Welcome, Big" in envelope.content:
                return "552 message too large"
            if b"Welcome, Later" in envelope.content:
                return "451 try again later"
            self.got.extend(envelope.rcpt_tos)
            return "250 OK"

    server = Server()
    controller = Controller(server, hostname="127.0.0.1", port=find_free_port(1))
    controller.start()
    try:
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        now = datetime.now(UTC)
        names = ["Big", "Ada", "Later", "Bo"]
        for n, name in enumerate(names):
            email = f"c{n}@mail.example"
            body = trigger(n, created_at=now, send_after=now + timedelta(microseconds=n))
            outbox.add(
                body.model_copy(update={"payload": {"email": email, "first_name": name}}), "pending"
            )
        outbox.commit()
        send_due(outbox, tmp_path / "outbox.sqlite3", port=controller.port)
    finally:
        controller.stop()
    assert server.got == ["c1@mail.example"]  # Big failed, Ada sent, Later deferred: Bo waits
    assert outbox.counts() == {"failed": 1, "sent": 1, "pending": 2}
