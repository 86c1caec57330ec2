"""``lifecycle playbook check``: each flow of a playbook in a few lines a marketer can read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lifecycle.flows.model import (
    Activity,
    AllOf,
    AnyOf,
    Branch,
    Cond,
    DateTrigger,
    EventMatch,
    FlowDef,
    Leaf,
    Not,
    Picker,
    SegmentEnter,
    SegmentRef,
    Send,
    SendSpec,
    StageEnter,
    Step,
    Trigger,
    Wait,
)
from lifecycle.flows.parse import segments_used

if TYPE_CHECKING:
    from lifecycle.playbook import Playbook

__all__ = ["describe_cond", "describe_playbook", "duration", "language_digest"]

_SYMBOLS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def duration(value: timedelta) -> str:
    """A duration in the playbook's short form: ``25d``, ``23h``, ``90m``, ``1w`` stays ``7d``."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{value.total_seconds():g}s"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)


def describe_cond(cond: Cond) -> str:
    match cond:
        case Leaf(path=path, op="exists", value=value):
            return f"{path} exists" if value else f"{path} is missing"
        case Leaf(path=path, op="in", value=value):
            return f"{path} in {_literal(value)}"
        case Leaf(path=path, op="not_in", value=value):
            return f"{path} not in {_literal(value)}"
        case Leaf(path=path, op=op, value=value):
            return f"{path} {_SYMBOLS[op]} {_literal(value)}"
        case AllOf(items=items):
            return "(" + " and ".join(describe_cond(c) for c in items) + ")"
        case AnyOf(items=items):
            return "(" + " or ".join(describe_cond(c) for c in items) + ")"
        case Not(cond=inner):
            return f"not {describe_cond(inner)}"
        case SegmentRef(name=name):
            return f"segment {name}"
        case Activity():
            what = (
                f"product {cond.product_id}"
                if cond.product_id is not None
                else f"category {cond.category}"
            )
            text = f"{cond.kind} {what}"
            if cond.within is not None:
                text += f" within {duration(cond.within)}"
            if cond.min_count != 1:
                text += f" at least {cond.min_count}x"
            return text
    return repr(cond)


def _event(match: EventMatch) -> str:
    text = f"event {match.event}"
    return text if match.where is None else f"{text} where {describe_cond(match.where)}"


def _trigger(trigger: Trigger) -> str:
    match trigger:
        case EventMatch():
            return _event(trigger)
        case StageEnter(stage_enter=stage):
            return f"stage_enter {stage.value}"
        case SegmentEnter(segment_enter=name):
            return f"segment_enter {name}"
        case DateTrigger(date=path, at=at):
            return f"date {path} at {at.strftime('%H:%M')}"
    return repr(trigger)


def _send(spec: SendSpec, playbook: Playbook) -> str:
    rule = next((r for c, r in playbook.campaigns.items() if c.value == spec.campaign), None)
    channel = spec.channel or (rule.channel if rule is not None else "email")
    priority = spec.priority if spec.priority is not None else (rule.priority if rule else 50)
    transactional = (
        spec.transactional if spec.transactional is not None else bool(rule and rule.transactional)
    )
    parts = [channel, f"priority {priority}"]
    if transactional:
        parts.append("transactional")
    if spec.include:
        parts.append("include " + ", ".join(spec.include))
    if spec.data:
        parts.append("data " + ", ".join(_data(k, v) for k, v in spec.data.items()))
    return f"send {spec.campaign} ({', '.join(parts)})"


def _data(name: str, value: Any) -> str:
    if isinstance(value, Picker):
        choices = ", ".join(f"{k}: {_literal(v)}" for k, v in value.values.items())
        default = f", default: {_literal(value.default)}" if value.has_default else ""
        return f"{name} by {value.by} {{{choices}{default}}}"
    return f"{name}={_literal(value)}"


def _steps(steps: tuple[Step, ...], prefix: str, playbook: Playbook) -> list[str]:
    lines: list[str] = []
    for n, step in enumerate(steps):
        at = f"{prefix}{n}"
        match step:
            case Wait(wait=wait):
                lines.append(f"{at} wait {duration(wait)}")
            case Send(send=spec):
                lines.append(f"{at} {_send(spec, playbook)}")
            case Branch():
                lines.append(f"{at} branch if {describe_cond(step.if_)}")
                lines += _steps(step.then, f"{at}.then.", playbook)
                lines += _steps(step.else_, f"{at}.else.", playbook)
    return lines


def _origin(name: str, flow: FlowDef, builtins: Mapping[str, FlowDef]) -> str:
    if name in builtins:
        origin = "built-in" if flow == builtins[name] or flow.builtin else "replaces built-in"
    else:
        origin = "added"
    return origin if flow.enabled else f"{origin}, off"


def describe_playbook(playbook: Playbook, builtins: Mapping[str, FlowDef]) -> list[str]:
    """Per flow: where it comes from, its trigger, run control, steps and the segments it uses."""
    lines: list[str] = []
    for name, flow in playbook.flows.items():
        head = f"{name} ({_origin(name, flow, builtins)})"
        if not flow.enabled and name in builtins:
            lines.append(head)
            continue
        lines.append(f"{head}  trigger: {_trigger(flow.trigger)}")
        control = []
        if flow.exit_on:
            control.append("exit_on: " + "; ".join(_event(e) for e in flow.exit_on))
        if flow.filters:
            control.append("filters: " + "; ".join(describe_cond(c) for c in flow.filters))
        if control:
            lines.append("  " + "   ".join(control))
        re_entry = flow.re_entry if isinstance(flow.re_entry, str) else duration(flow.re_entry)
        run = [f"re_entry: {re_entry}", f"on_retrigger: {flow.on_retrigger}"]
        if flow.per is not None:
            run.append(f"per: {flow.per}")
        if flow.holdout is not None:
            run.append(f"holdout: {flow.holdout:.0%}")
        else:
            run.append("holdout: default")
        lines.append("  " + "  ".join(run))
        lines.append("  steps: " + " | ".join(_steps(flow.steps, "", playbook)))
        used = segments_used(flow, playbook.segments)
        lines.append("  segments: " + (", ".join(used) if used else "-"))
    if not playbook.flows:
        lines.append("no flows")
    return lines


def language_digest(playbook: Playbook) -> str:
    """A short hash of the segments and flows in effect: a worker and a backtest on the same
    playbook print the same one."""
    language = {
        "segments": {k: v.model_dump(mode="json") for k, v in playbook.segments.items()},
        "flows": {k: v.model_dump(mode="json") for k, v in playbook.flows.items()},
    }
    text = json.dumps(language, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
