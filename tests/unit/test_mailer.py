"""The reference mailer's own rules: what to send, which template, a durable outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.mailer import Outbox, Templates, message_for, plan
from schemas.records import Campaign, Stage, Trigger

AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def trigger(n: int = 1, **fields: Any) -> Trigger:
    base: dict[str, Any] = {
        "trigger_id": f"t{n}",
        "customer_id": "c1",
        "campaign": Campaign.WELCOME,
        "channel": "email",
        "stage": Stage.LEAD,
        "created_at": AT,
        "send_after": AT,
        "variant": "A",
        "holdout": False,
        "payload": {"email": "c1@mail.example", "first_name": "Ada", "locale": "de-DE"},
    }
    return Trigger.model_validate(base | fields)


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
