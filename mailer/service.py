"""``lifecycle mailer``: the reference email service, lifecycle.triggers -> SMTP.

What an email team needs to get right when consuming triggers, done once:

- its own consumer group, offsets committed only after a trigger is stored;
- holdouts are recorded and never sent (lift is measured against them);
- only email triggers are mailed: one for another channel (sms, push,
  webhook) is stored as ``other_channel`` and counted, for that channel's
  own service to deliver;
- a trigger too old to be worth sending (a cart reminder a day later, a
  backlog from last year read by a new mailer) is stored as ``expired`` and
  counted, never sent: each campaign has a ``max_age`` measured from the
  trigger's ``send_after`` to the mailer's clock;
- ``send_after`` is honoured (quiet hours), from a durable outbox, so a
  restart neither forgets a delayed mail nor sends one twice: the outbox is
  keyed by trigger_id in SQLite, and each mail's Message-ID is derived from
  it so a downstream relay can de-duplicate too;
- a mail is marked ``sending`` (committed) before it is handed to SMTP, so a
  mailer killed mid-send never sends it again: on restart such a mail is
  ``unconfirmed`` (perhaps delivered, counted and logged by trigger_id), the
  one case where at-most-once is chosen over a duplicate;
- a template per campaign and locale (Jinja2), falling back to the language,
  then to English;
- one trigger never stops the mailer: an address that is not exactly one
  plain mailbox (``a,b@x`` would mail two people) is stored as
  ``bad_address`` and never handed to SMTP, a template that does not render
  as ``bad_template``, and anything else a mail's making or sending raises as
  ``failed``; control characters in a value never reach a header;
- a refused recipient can be published back as a ``bounce`` engagement event.

No personal data is logged: lines name trigger ids and campaigns only.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import aiosmtplib
import jinja2
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from schemas.codec import dumps, encode_model, loads
from schemas.records import Campaign, Trigger
from streams.kafka import consumer as kafka_consumer
from streams.kafka import producer as kafka_producer
from streams.settings import Settings

__all__ = [
    "DEFAULT_MAX_AGE",
    "OTHER_MAX_AGE",
    "Outbox",
    "OutboxError",
    "Templates",
    "max_ages",
    "plan",
    "read_trigger",
    "run_mailer",
]

log = logging.getLogger(__name__)

_BUILT_IN = Path(__file__).parent / "templates"


OTHER_MAX_AGE = timedelta(days=7)
"""The max age of a campaign with none of its own (a shop's own campaign, from a flow)."""

DEFAULT_MAX_AGE: Mapping[str, timedelta] = {
    campaign: timedelta(hours=24)
    if campaign in (Campaign.CART_ABANDONMENT, Campaign.BROWSE_ABANDONMENT)
    else OTHER_MAX_AGE
    for campaign in Campaign
}
"""An abandoned cart is news for a day; the other campaigns for a week."""


def max_ages(seconds: Mapping[Campaign, float] | Mapping[str, float]) -> dict[str, timedelta]:
    """The campaigns' max ages: the defaults, with ``seconds`` (the settings) over them."""
    ages = dict(DEFAULT_MAX_AGE)
    ages.update({str(c): timedelta(seconds=s) for c, s in seconds.items()})
    return ages


def read_trigger(raw: bytes | str) -> Trigger:
    """A trigger record; one an older engine wrote (before flows: no ``flow`` and
    ``step``) reads as its campaign's flow, step ``"0"``. Raises ValidationError."""
    try:
        return Trigger.model_validate_json(raw)
    except ValidationError:
        try:
            data = loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or "flow" in data or "step" in data:
            raise
        return Trigger.model_validate({**data, "flow": data.get("campaign"), "step": "0"})


def age(trigger: Trigger, now: datetime) -> timedelta:
    """How long ago the trigger was due: from its ``send_after`` (never before it was made)."""
    return now - max(trigger.send_after, trigger.created_at)


def plan(
    trigger: Trigger,
    now: datetime | None = None,
    max_age: Mapping[str, timedelta] = DEFAULT_MAX_AGE,
) -> str:
    """What to do with a trigger: ``send``, or why not (``held_out``,
    ``other_channel``, ``expired``, ``no_address``, ``bad_address``). Without ``now``
    nothing expires."""
    if trigger.holdout:
        return "held_out"
    if trigger.channel != "email":
        return "other_channel"
    if now is not None and age(trigger, now) > max_age.get(trigger.campaign, OTHER_MAX_AGE):
        return "expired"
    address = trigger.payload.get("email")
    if not address:
        return "no_address"
    if not mailbox(address):
        return "bad_address"
    return "send"


_MAILBOX = re.compile(r"[^\s@<>()\[\],;:\\\"]+@[^\s@<>()\[\],;:\\\"]+")
"""One plain ``local@domain``: none of the characters that make an address list, a
group, a comment, a route or a quoted part in a header."""


def mailbox(address: object) -> bool:
    """Whether ``address`` is exactly one plain mailbox, read as SMTP will read the
    ``To`` header: the engine accepts any text with one ``@``, and a header parses
    ``a,b@x.example`` as two recipients, ``x:victim@y.example`` as a group, and
    ``(x)@y.example`` as a comment and an empty address."""
    if not isinstance(address, str) or _MAILBOX.fullmatch(address) is None:
        return False
    return getaddresses([address]) == [("", address)]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class OutboxError(Exception):
    """The outbox cannot be opened: a path that is a directory, or a file of another kind."""


class Outbox:
    """Every trigger seen, by trigger_id, with its status: the mailer's durable memory."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path)
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS mails (trigger_id TEXT PRIMARY KEY, campaign TEXT,"
                " send_after REAL, status TEXT, trigger TEXT, updated REAL)"
            )
            self.db.commit()
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open the outbox {path} (LIFECYCLE_MAILER_OUTBOX): {exc}"
            raise OutboxError(msg) from exc

    def add(self, trigger: Trigger, status: str) -> bool:
        """Store a trigger once; False when its trigger_id was seen before."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO mails VALUES (?, ?, ?, ?, ?, ?)",
            (
                trigger.trigger_id,
                trigger.campaign,
                trigger.send_after.timestamp(),
                status,
                encode_model(trigger).decode(),
                time.time(),
            ),
        )
        return cursor.rowcount == 1

    def commit(self) -> None:
        self.db.commit()

    def recover(self) -> int:
        """Mails a killed mailer was handing to SMTP: perhaps sent, so never sent again."""
        cursor = self.db.execute(
            "UPDATE mails SET status = 'unconfirmed', updated = ? WHERE status = 'sending'",
            (time.time(),),
        )
        self.db.commit()
        return cursor.rowcount

    def due(self, now: float) -> list[Trigger]:
        rows = self.db.execute(
            "SELECT trigger FROM mails WHERE status = 'pending' AND send_after <= ?"
            " ORDER BY send_after, trigger_id",
            (now,),
        ).fetchall()
        return [read_trigger(row[0]) for row in rows]

    def mark(self, trigger_id: str, status: str) -> None:
        self.db.execute(
            "UPDATE mails SET status = ?, updated = ? WHERE trigger_id = ?",
            (status, time.time(), trigger_id),
        )
        self.db.commit()

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, count(*) FROM mails GROUP BY status"))


class Templates:
    """``<campaign>.<locale>.txt``, then ``<campaign>.<language>.txt``, then ``<campaign>.txt``;
    the first line is ``Subject: ...``. A directory of your own overrides the built-in ones."""

    def __init__(self, directory: Path | None = None) -> None:
        paths = [str(directory)] if directory else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*paths, str(_BUILT_IN)]),
            undefined=jinja2.ChainableUndefined,
            autoescape=False,  # plain-text mail  # noqa: S701
            keep_trailing_newline=True,
        )

    def render(self, trigger: Trigger) -> tuple[str, str]:
        locale = str(trigger.payload.get("locale") or "")
        names = [f"{trigger.campaign}.{locale}.txt"] if locale else []
        if "-" in locale:
            names.append(f"{trigger.campaign}.{locale.split('-', maxsplit=1)[0]}.txt")
        names.append(f"{trigger.campaign}.txt")
        template = self.env.select_template(names)  # TemplateNotFound, TemplateSyntaxError
        values = {  # a line break in a name would end the subject line
            key: _CONTROL.sub(" ", value) if isinstance(value, str) else value
            for key, value in trigger.payload.items()
        }
        try:
            text = template.render(**values, variant=trigger.variant, stage=trigger.stage)
        except jinja2.TemplateError:
            raise
        except Exception as exc:  # what the template's own expressions raise, 1 // 0
            raise jinja2.TemplateRuntimeError(type(exc).__name__) from exc
        first, _, body = text.partition("\n")
        subject = _CONTROL.sub(" ", first.removeprefix("Subject:")).strip()
        return subject, body.lstrip("\n")


@dataclass(frozen=True, slots=True)
class MailerSettings:
    smtp_host: str
    smtp_port: int
    sender: str
    group: str
    outbox: Path
    templates: Path | None
    publish_bounces: bool
    max_age: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_AGE))


def message_for(trigger: Trigger, templates: Templates, sender: str) -> EmailMessage:
    subject, body = templates.render(trigger)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = str(trigger.payload["email"])
    message["Subject"] = subject
    message["Message-ID"] = f"<{trigger.trigger_id}@lifecycle>"
    message["X-Lifecycle-Campaign"] = trigger.campaign
    message["X-Lifecycle-Variant"] = trigger.variant
    message.set_content(body)
    return message


async def _publish_bounce(producer: AIOKafkaProducer, settings: Settings, trigger: Trigger) -> None:
    event = {
        "event_id": f"bounce-{trigger.trigger_id}",
        "type": "engagement",
        "occurred_at": datetime.now(UTC),
        "customer_id": trigger.customer_id,
        "action": "bounce",
        "channel": "email",
        "campaign": trigger.campaign,
        "trigger_id": trigger.trigger_id,
    }
    await producer.send_and_wait(
        settings.topic("engagement"), dumps(event), key=trigger.customer_id.encode()
    )


async def _send_due(
    outbox: Outbox,
    templates: Templates,
    config: MailerSettings,
    producer: AIOKafkaProducer | None,
    settings: Settings,
) -> None:
    expired: Counter[str] = Counter()
    now = time.time()
    for trigger in outbox.due(now):
        decision = plan(trigger, datetime.fromtimestamp(now, UTC), config.max_age)
        if decision != "send":  # expired waiting (SMTP was down), or stored before a check
            outbox.mark(trigger.trigger_id, decision)
            if decision == "expired":
                expired[trigger.campaign] += 1
            else:
                log.warning("trigger %s not sent: %s", trigger.trigger_id, decision)
            continue
        message = _message(outbox, trigger, templates, config.sender)
        if message is not None and not await _send_one(
            outbox, trigger, message, config, producer, settings
        ):
            break  # SMTP unavailable: try again on the next round
    _log_expired(expired, "before they could be sent")


def _message(
    outbox: Outbox, trigger: Trigger, templates: Templates, sender: str
) -> EmailMessage | None:
    """The trigger's mail; None once its status in the outbox says why there is none."""
    try:
        return message_for(trigger, templates, sender)
    except jinja2.TemplateNotFound:  # a shop's own campaign without a template of its own
        outbox.mark(trigger.trigger_id, "no_template")
        log.warning(
            "no template for campaign %s: trigger %s not sent",
            trigger.campaign,
            trigger.trigger_id,
        )
    except jinja2.TemplateError as exc:  # a shop's template with an error in it
        outbox.mark(trigger.trigger_id, "bad_template")
        log.warning(
            "template for campaign %s does not render (%s): trigger %s not sent",
            trigger.campaign,
            type(exc).__name__,
            trigger.trigger_id,
        )
    except Exception as exc:  # a value no mail can carry: this mail, not the mailer
        outbox.mark(trigger.trigger_id, "failed")
        log.warning("trigger %s: no mail made (%s)", trigger.trigger_id, type(exc).__name__)
    return None


async def _send_one(
    outbox: Outbox,
    trigger: Trigger,
    message: EmailMessage,
    config: MailerSettings,
    producer: AIOKafkaProducer | None,
    settings: Settings,
) -> bool:
    """Hand one mail to SMTP and store what became of it; False when SMTP is unavailable
    (or defers it), so the round ends and the mail stays pending."""
    outbox.mark(trigger.trigger_id, "sending")
    try:
        await aiosmtplib.send(message, hostname=config.smtp_host, port=config.smtp_port)
    except aiosmtplib.SMTPRecipientsRefused:
        outbox.mark(trigger.trigger_id, "bounced")
        log.warning("trigger %s refused by the SMTP server", trigger.trigger_id)
        if producer is not None:
            await _publish_bounce(producer, settings, trigger)
        return True
    except (aiosmtplib.SMTPNotSupported, aiosmtplib.SMTPDataError) as exc:
        if isinstance(exc, aiosmtplib.SMTPDataError) and exc.code < 500:  # try again
            outbox.mark(trigger.trigger_id, "pending")
            log.warning("SMTP deferred trigger %s (%d)", trigger.trigger_id, exc.code)
            return False
        # This mail refused for good (too large, an address needing SMTPUTF8 the server
        # lacks): retried first on every round, it would hold up the rest.
        outbox.mark(trigger.trigger_id, "failed")
        log.warning(  # the type and code only: a server's reply may quote the address
            "trigger %s refused by the SMTP server (%s %s)",
            trigger.trigger_id,
            type(exc).__name__,
            getattr(exc, "code", ""),
        )
        return True
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.warning(
            "SMTP unavailable (%s); trigger %s stays pending",
            type(exc).__name__,
            trigger.trigger_id,
        )
        outbox.mark(trigger.trigger_id, "pending")  # refused outright: never sent
        return False
    except (ValueError, TypeError, UnicodeError) as exc:  # refused before a byte was sent
        outbox.mark(trigger.trigger_id, "failed")
        log.warning("trigger %s: not sendable (%s)", trigger.trigger_id, type(exc).__name__)
        return True
    outbox.mark(trigger.trigger_id, "sent")
    log.info("sent %s (%s)", trigger.trigger_id, trigger.campaign)
    return True


def _log_expired(expired: Counter[str], when: str) -> None:
    """One line per batch, by campaign: a year's backlog must not log a line per trigger."""
    if expired:
        log.info(
            "%d trigger(s) older than their campaign's max age %s, stored as expired: %s",
            expired.total(),
            when,
            ", ".join(f"{c} {n}" for c, n in sorted(expired.items())),
        )


async def run_mailer(
    settings: Settings, config: MailerSettings, stop: asyncio.Event
) -> dict[str, int]:
    """Consume triggers until ``stop`` is set; returns the outbox's counts by status."""
    outbox = Outbox(config.outbox)
    unconfirmed = outbox.recover()
    if unconfirmed:
        log.warning(
            "%d mail(s) were being sent when the mailer stopped: not sent again", unconfirmed
        )
    templates = Templates(config.templates)
    consumer = kafka_consumer(
        settings,
        settings.topic("triggers"),
        group_id=config.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = kafka_producer(settings) if config.publish_bounces else None
    try:  # a client that failed to start is stopped too, or it is reported unclosed
        await consumer.start()
        if producer is not None:
            await producer.start()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=250)
            expired: Counter[str] = Counter()
            now = datetime.now(UTC)
            for records in batches.values():
                for record in records:
                    stored = _store(outbox, record.value, now, config.max_age)
                    if stored is not None and stored[1] == "expired":
                        expired[stored[0]] += 1
            _log_expired(expired, "on arrival")
            if batches:
                outbox.commit()
                await consumer.commit()  # only once the triggers are stored
            await _send_due(outbox, templates, config, producer, settings)
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return outbox.counts()


def _store(
    outbox: Outbox, value: Any, now: datetime, max_age: Mapping[str, timedelta]
) -> tuple[str, str] | None:
    """Store a trigger once; its campaign and status, or None when nothing was stored."""
    try:
        trigger = read_trigger(value or b"")
    except ValidationError:
        log.warning("skipped a message that is not a trigger")
        return None
    decision = plan(trigger, now, max_age)
    status = "pending" if decision == "send" else decision
    if not outbox.add(trigger, status):
        log.info("trigger %s seen before: not stored again", trigger.trigger_id)
        return None
    return trigger.campaign, status
