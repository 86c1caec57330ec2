"""Playbook data (as YAML gives it) to segments and flows, refusing bad input in one line.

Hand-written rather than pydantic unions, so every error names the place the
way a marketer wrote it (``flows.cart_series.steps[2].send.campaign: required``)
and says what is wrong in words. ``compose`` lays a shop's segments and flows
over the default playbook's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError

from lifecycle.flows.conditions import choice_key, number_text
from lifecycle.flows.model import (
    INCLUDES,
    OPERATORS,
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
    SegmentDef,
    SegmentEnter,
    SegmentRef,
    Send,
    SendSpec,
    StageEnter,
    Step,
    Trigger,
    Wait,
)
from lifecycle.flows.paths import EVENT_PATHS, PathKind, event_path, record_path
from lifecycle.state import CHANNELS
from lifecycle.units import NO_UNIT, NOT_POSITIVE, TOO_LONG, Duration, equal_arms
from schemas.records import Stage

__all__ = [
    "FlowError",
    "Language",
    "Scope",
    "compose",
    "condition",
    "parse_language",
    "segments_used",
]

Loc = tuple[int | str, ...]


class FlowError(ValueError):
    """One problem of a playbook's segments or flows, at ``loc``."""

    def __init__(self, loc: Loc, problem: str) -> None:
        self.loc = loc
        self.problem = problem
        super().__init__(f"{_path(loc)}: {problem}")


def _path(loc: Loc) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


Language = tuple[dict[str, SegmentDef], dict[str, FlowDef]]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CAMPAIGN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_TRAIT = re.compile(r"^traits\.[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)
_EVENT_TYPES = ", ".join(EVENT_PATHS)
_STAGES = {s.value for s in Stage}
_TRIGGER_KINDS = ("event", "stage_enter", "segment_enter", "date")
_STEP_KINDS = ("wait", "send", "branch")
_RESERVED = frozenset(("all", "any", "not", "segment", "bought", "viewed", "field", *OPERATORS))
"""A condition's keys that are not paths: a mapping of several keys is PATH: VALUE pairs
only when none of them is one of these."""
_ORDERED = frozenset(("gt", "gte", "lt", "lte"))
_FLOW_KEYS = (
    "trigger",
    "steps",
    "exit_on",
    "filters",
    "re_entry",
    "on_retrigger",
    "per",
    "holdout",
    "enabled",
)
_SEND_KEYS = ("campaign", "channel", "transactional", "priority", "variants", "include", "data")


def _show(value: Any) -> str:
    """A value as the message shows it: YAML's ``null``, ``true`` and ``false`` as a
    playbook writes them, a text quoted."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _mapping(value: Any, loc: Loc, what: str = "a mapping") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FlowError(loc, f"must be {what}, not {_show(value)}")
    for key in value:
        if not isinstance(key, str):
            raise FlowError(loc, f"keys must be names, not {_show(key)}")
    return value


def _list(value: Any, loc: Loc) -> list[Any]:
    if not isinstance(value, list):
        raise FlowError(loc, f"must be a list, not {_show(value)}")
    return value


def _unknown_keys(given: Mapping[str, Any], known: tuple[str, ...], loc: Loc) -> None:
    for key in given:
        if key not in known:
            raise FlowError(loc, f"unknown key {key!r}")


def _duration(value: Any, loc: Loc) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, str | int | float | timedelta):
        raise FlowError(loc, f"not a duration: {_show(value)}")
    try:
        return _DURATION.validate_python(value)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] in (NOT_POSITIVE, TOO_LONG, NO_UNIT):  # the playbook's words
                raise FlowError(loc, error["msg"]) from None
        raise FlowError(loc, f"not a duration: {_show(value)}") from None


# --- conditions -----------------------------------------------------------------------


class Scope:
    """Where a condition is: over the record (segments, filters, branches) or an event (where)."""

    def __init__(self, event: str | None, segments: frozenset[str] | None = None) -> None:
        self.event = event
        self.segments = segments
        """The segment names a ``segment`` may name; None: any (checked later)."""

    def kind(self, path: str, loc: Loc) -> PathKind:
        if self.event is None:
            kind = record_path(path)
            if kind is None:
                raise FlowError(loc, f"unknown record path {path!r}")
            return kind
        kind = event_path(self.event, path)
        if kind is None:
            raise FlowError(loc, f"{self.event} events have no field {path!r}")
        return kind


def _is_number(value: Any) -> bool:
    """A finite number: YAML's ``.inf``, ``1e999`` or ``.nan`` would hold never or always."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)  # an int too long for a float too


def _exact(kind: PathKind, value: Any) -> Any:
    """A quoted numeral on a number path (``total: {gte: "10.10"}``) as the exact Decimal it
    writes, as a picker's quoted VALUE already reads; any other value as given (on a
    trait or property path a quoted ``'5'`` stays text, matching text)."""
    if kind.kind == "number" and isinstance(value, str):
        number = number_text(value)
        if number is not None:
            return number
    return value


def _check_value(path: str, kind: PathKind, value: Any, loc: Loc) -> None:
    if isinstance(value, list):
        hint = f" (any of several: {{{path}: {{in: [...]}}}})"
        raise FlowError(loc, f"{path} compares with a single value, not {_show(value)}{hint}")
    if isinstance(value, dict) or value is None:
        raise FlowError(loc, f"{path} compares with a single value, not {_show(value)}")
    if kind.kind == "number" and not (_is_number(value) or isinstance(value, Decimal)):
        raise FlowError(loc, f"{path} compares with a number, not {_show(value)}")
    if kind.kind == "bool" and not isinstance(value, bool):
        raise FlowError(loc, f"{path} compares with true or false, not {_show(value)}")
    if kind.kind == "text" and not isinstance(value, str):
        raise FlowError(loc, f"{path} compares with a text, not {_show(value)}")
    if kind.kind == "names" and value not in kind.names:
        raise FlowError(loc, f"{path} is one of {', '.join(kind.names)}, not {_show(value)}")


def _leaf(
    path: Any, op: str, value: Any, scope: Scope, loc: Loc, path_loc: Loc, *, short: bool = False
) -> Leaf:
    """``{field: PATH, OP: VALUE}``; ``short`` for ``{PATH: VALUE}``, whose value's
    problems are told at the path, as written, not at an ``eq`` nobody wrote."""
    if not isinstance(path, str):
        raise FlowError(path_loc, f"must be a path, not {_show(path)}")
    kind = scope.kind(path, path_loc)
    here = path_loc if short else (*loc, op)
    if op in _ORDERED and kind.kind in ("names", "bool"):
        # Names compared as text order alphabetically ("high" < "mid"), never as a marketer
        # means them (a tier at least mid, a stage past lead): refused, not silently wrong.
        raise FlowError(here, f"{path} has no order: use eq, ne, in or not_in")
    if op == "exists":
        if not isinstance(value, bool):
            raise FlowError(here, "exists needs true or false")
    elif op in ("in", "not_in"):
        if not isinstance(value, list):
            raise FlowError(here, f"{op} needs a list, not {_show(value)}")
        if not value:  # in: [] never holds, not_in: [] always: a slip, as all: [] is
            raise FlowError(here, "must not be empty")
        value = [_exact(kind, item) for item in value]
        for n, item in enumerate(value):
            _check_value(path, kind, item, (*here, n))
    else:
        value = _exact(kind, value)
        _check_value(path, kind, value, here)
    return Leaf(path=path, op=op, value=tuple(value) if isinstance(value, list) else value)


def _activity(kind: str, value: Any, loc: Loc) -> Activity:
    given = _mapping(value, loc)
    _unknown_keys(given, ("product_id", "category", "within", "min_count"), loc)
    product, category = given.get("product_id"), given.get("category")
    if product is not None and category is not None:
        raise FlowError(loc, "needs product_id or category, not both")
    if product is None and category is None:
        raise FlowError(loc, "needs product_id or category")
    for name, text in (("product_id", product), ("category", category)):
        if text is not None and not isinstance(text, str):
            raise FlowError((*loc, name), f"must be a text, not {_show(text)}")
    within = None if given.get("within") is None else _duration(given["within"], (*loc, "within"))
    count = given.get("min_count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FlowError(
            (*loc, "min_count"), f"must be a whole number of at least 1, not {_show(count)}"
        )
    return Activity(
        kind=kind,
        product_id=product,
        category=category,
        within=within,
        min_count=count,
    )


def condition(value: Any, scope: Scope, loc: Loc) -> Cond:
    """A condition from its YAML form; ``scope`` says which paths it may name."""
    given = _mapping(value, loc, "a condition (a mapping)")
    if not given:
        raise FlowError(loc, "an empty condition")
    if "field" in given:
        ops = [k for k in given if k != "field"]
        for key in ops:
            if key not in OPERATORS:
                raise FlowError(loc, f"unknown operator {key!r}")
        if len(ops) != 1:
            raise FlowError(loc, "needs exactly one operator")
        return _leaf(given["field"], ops[0], given[ops[0]], scope, loc, (*loc, "field"))
    if len(given) != 1:
        if any(not isinstance(k, str) or k in _RESERVED for k in given):
            raise FlowError(
                loc,
                "needs exactly one of all, any, not, segment, bought, viewed, field"
                f" or PATH: VALUE pairs, not {', '.join(map(str, given))}",
            )
        # PATH: VALUE pairs, each a condition of its own, all of which must hold
        return AllOf(items=tuple(condition({k: v}, scope, loc) for k, v in given.items()))
    ((key, inner),) = given.items()
    if key in ("all", "any"):
        items = tuple(
            condition(c, scope, (*loc, key, n)) for n, c in enumerate(_list(inner, (*loc, key)))
        )
        if not items:
            raise FlowError((*loc, key), "must not be empty")
        return AllOf(items=items) if key == "all" else AnyOf(items=items)
    if key == "not":
        return Not(cond=condition(inner, scope, (*loc, key)))
    if key in ("segment", "bought", "viewed"):
        if scope.event is not None:
            raise FlowError(
                (*loc, key), "conditions in where test the event; use filters for the customer"
            )
        if key == "segment":
            if not isinstance(inner, str):
                raise FlowError((*loc, key), f"must be a segment name, not {_show(inner)}")
            if scope.segments is not None and inner not in scope.segments:
                raise FlowError((*loc, key), f"unknown segment {inner!r}")
            return SegmentRef(name=inner)
        return _activity(key, inner, (*loc, key))
    if key in OPERATORS:
        raise FlowError(loc, f"{key} needs a field")
    if isinstance(inner, Mapping) and inner:
        # PATH: {OP: VALUE, ...}, each operator a leaf on the path
        for op in inner:
            if op not in OPERATORS:
                raise FlowError((*loc, key), f"unknown operator {_show(op)}")
        leaves = tuple(
            _leaf(key, op, v, scope, (*loc, key), (*loc, key)) for op, v in inner.items()
        )
        return leaves[0] if len(leaves) == 1 else AllOf(items=leaves)
    return _leaf(key, "eq", inner, scope, loc, (*loc, key), short=True)


def _segment_refs(cond: Cond | None) -> list[str]:
    match cond:
        case SegmentRef(name=name):
            return [name]
        case AllOf(items=items) | AnyOf(items=items):
            return [n for c in items for n in _segment_refs(c)]
        case Not(cond=inner):
            return _segment_refs(inner)
        case _:
            return []


def _check_refs(cond: Cond | None, segments: Mapping[str, Any], loc: Loc) -> None:
    for name in _segment_refs(cond):
        if name not in segments:
            raise FlowError(loc, f"unknown segment {name!r}")


# --- flows ----------------------------------------------------------------------------


def _event_type(value: Any, loc: Loc) -> str:
    if not isinstance(value, str) or value not in EVENT_PATHS:
        raise FlowError(loc, f"unknown event type {_show(value)} (one of {_EVENT_TYPES})")
    return value


def _event_match(given: Mapping[str, Any], loc: Loc, extra: tuple[str, ...] = ()) -> EventMatch:
    event = _event_type(given["event"], (*loc, "event"))
    where = given.get("where")
    cond = None if where is None else condition(where, Scope(event), (*loc, "where"))
    return EventMatch(event=event, where=cond)


def _trigger(value: Any, loc: Loc) -> Trigger:
    given = _mapping(value, loc)
    kinds = [k for k in _TRIGGER_KINDS if k in given]
    if len(kinds) != 1:
        raise FlowError(loc, f"needs exactly one of {', '.join(_TRIGGER_KINDS)}")
    kind = kinds[0]
    allowed = {"event": ("event", "where"), "date": ("date", "at")}.get(kind, (kind,))
    _unknown_keys(given, allowed, loc)
    here = (*loc, kind)
    if kind == "event":
        return _event_match(given, loc)
    inner = given[kind]
    if kind == "stage_enter":
        if not isinstance(inner, str) or inner not in _STAGES:
            raise FlowError(here, f"unknown stage {_show(inner)}")
        return StageEnter(stage_enter=inner)
    if kind == "segment_enter":
        if not isinstance(inner, str):
            raise FlowError(here, f"must be a segment name, not {_show(inner)}")
        return SegmentEnter(segment_enter=inner)
    if not isinstance(inner, str) or not _TRAIT.match(inner):
        raise FlowError(here, "must be a traits.X path")
    at = given.get("at", "09:00")
    match = _CLOCK.match(at) if isinstance(at, str) else None
    if match is None:
        raise FlowError((*loc, "at"), "must be HH:MM")
    return DateTrigger(date=inner, at=time(int(match[1]), int(match[2])))


def _data_value(value: Any, loc: Loc) -> Any:
    if isinstance(value, Mapping) and "by" in value:
        by = value["by"]
        if not isinstance(by, str) or record_path(by) is None:
            raise FlowError((*loc, "by"), f"unknown record path {_show(by)}")
        choices: dict[str, Any] = {}
        for k, v in value.items():
            if k in ("by", "default"):
                continue
            key = choice_key(k)
            name = "null" if k is None else _show(k)
            if key is None:
                raise FlowError((*loc, name), "a VALUE must be a text, a number or true/false")
            if key in choices:
                raise FlowError((*loc, name), f"the same VALUE as another: {key}")
            choices[key] = v
        if not choices:
            raise FlowError(loc, "a picker needs at least one VALUE: X")
        return Picker(
            by=by, values=choices, default=value.get("default"), has_default="default" in value
        )
    return value


def _send(value: Any, trigger: Trigger, loc: Loc) -> SendSpec:
    given = _mapping(value, loc)
    _unknown_keys(given, _SEND_KEYS, loc)
    campaign = given.get("campaign")
    if campaign is None:
        raise FlowError((*loc, "campaign"), "required")
    if not isinstance(campaign, str) or not _CAMPAIGN.match(campaign):
        raise FlowError((*loc, "campaign"), f"not a campaign name: {_show(campaign)}")
    channel = given.get("channel")
    if channel is not None and channel not in CHANNELS:
        raise FlowError((*loc, "channel"), f"must be one of {', '.join(CHANNELS)}")
    transactional = given.get("transactional")
    if transactional is not None and not isinstance(transactional, bool):
        raise FlowError((*loc, "transactional"), "must be true or false")
    priority = given.get("priority")
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or priority < 0
    ):
        raise FlowError((*loc, "priority"), "must be a whole number of at least 0")
    variants = given.get("variants")
    if isinstance(variants, list):
        try:
            variants = equal_arms(variants)
        except ValueError as exc:
            raise FlowError((*loc, "variants"), str(exc)) from None
    if variants is not None:
        variants = dict(_mapping(variants, (*loc, "variants")))
        if not variants:
            raise FlowError((*loc, "variants"), "needs at least one variant")
        for name, weight in variants.items():
            if not _is_number(weight) or weight <= 0:
                raise FlowError((*loc, "variants", name), "must be a number above 0")
        variants = {str(k): float(v) for k, v in variants.items()}
    include = _list(given.get("include", []), (*loc, "include"))
    for n, item in enumerate(include):
        if item not in INCLUDES:
            raise FlowError((*loc, "include", n), f"unknown include {_show(item)}")
        if item == "order" and not (
            isinstance(trigger, EventMatch) and trigger.event == "purchase"
        ):
            raise FlowError((*loc, "include", n), "order needs a purchase trigger")
    data = _mapping(given.get("data", {}), (*loc, "data"))
    return SendSpec(
        campaign=campaign,
        channel=channel,
        transactional=transactional,
        priority=priority,
        variants=variants,
        include=tuple(dict.fromkeys(include)),
        data={k: _data_value(v, (*loc, "data", k)) for k, v in data.items()},
    )


def _steps(value: Any, trigger: Trigger, record: Scope, loc: Loc) -> tuple[Step, ...]:
    if value is None:
        raise FlowError(loc, "required")
    steps = _list(value, loc)
    if not steps:
        raise FlowError(loc, "must not be empty")
    return tuple(_step(s, trigger, record, (*loc, n)) for n, s in enumerate(steps))


def _step(value: Any, trigger: Trigger, record: Scope, loc: Loc) -> Step:
    given = _mapping(value, loc)
    kinds = [k for k in given if k in _STEP_KINDS]
    if len(kinds) != 1 or len(given) != 1:
        raise FlowError(loc, f"needs exactly one of {', '.join(_STEP_KINDS)}")
    kind = kinds[0]
    here = (*loc, kind)
    if kind == "wait":
        return Wait(wait=_duration(given[kind], here))
    if kind == "send":
        return Send(send=_send(given[kind], trigger, here))
    branch = _mapping(given[kind], here)
    _unknown_keys(branch, ("if", "then", "else"), here)
    if "if" not in branch:
        raise FlowError((*here, "if"), "required")
    if_ = condition(branch["if"], record, (*here, "if"))
    if "then" not in branch:
        raise FlowError((*here, "then"), "required")
    then = _steps(branch["then"], trigger, record, (*here, "then"))
    if branch.get("else") is None:
        return Branch(if_=if_, then=then)
    return Branch(
        if_=if_, then=then, else_=_steps(branch["else"], trigger, record, (*here, "else"))
    )


def _sends(steps: tuple[Step, ...]) -> list[SendSpec]:
    found: list[SendSpec] = []
    for step in steps:
        if isinstance(step, Send):
            found.append(step.send)
        elif isinstance(step, Branch):
            found += _sends(step.then) + _sends(step.else_)
    return found


def _branch_conds(steps: tuple[Step, ...]) -> list[Cond]:
    found: list[Cond] = []
    for step in steps:
        if isinstance(step, Branch):
            found += [step.if_, *_branch_conds(step.then), *_branch_conds(step.else_)]
    return found


def parse_flow(
    value: Any, loc: Loc, *, builtin: bool = False, segments: frozenset[str] | None = None
) -> FlowDef:
    """One flow; ``segments``: the names its conditions may use (None: checked later)."""
    record = Scope(None, segments)
    given = _mapping(value, loc)
    _unknown_keys(given, _FLOW_KEYS, loc)
    if "trigger" not in given:
        raise FlowError((*loc, "trigger"), "required")
    trigger = _trigger(given["trigger"], (*loc, "trigger"))
    steps = _steps(given.get("steps"), trigger, record, (*loc, "steps"))
    exits = []
    for n, item in enumerate(_list(given.get("exit_on", []), (*loc, "exit_on"))):
        here = (*loc, "exit_on", n)
        entry = _mapping(item, here)
        _unknown_keys(entry, ("event", "where"), here)
        if "event" not in entry:
            raise FlowError((*here, "event"), "required")
        exits.append(_event_match(entry, here))
    filters = tuple(
        condition(c, record, (*loc, "filters", n))
        for n, c in enumerate(_list(given.get("filters", []), (*loc, "filters")))
    )
    re_entry: Any = given.get("re_entry", "always")
    if re_entry not in ("always", "once"):
        try:
            re_entry = _duration(re_entry, (*loc, "re_entry"))
        except FlowError:
            raise FlowError((*loc, "re_entry"), "must be always, once or a duration") from None
    on_retrigger = given.get("on_retrigger", "restart")
    if on_retrigger not in ("restart", "ignore"):
        raise FlowError((*loc, "on_retrigger"), "must be restart or ignore")
    per = given.get("per")
    if per is not None:
        if not isinstance(trigger, EventMatch):
            raise FlowError((*loc, "per"), "needs an event trigger")
        if not isinstance(per, str):
            raise FlowError((*loc, "per"), f"must be a field name, not {_show(per)}")
        kind = event_path(trigger.event, per)
        if kind is None:
            raise FlowError((*loc, "per"), f"{trigger.event} events have no field {per!r}")
        if kind.through_list:
            raise FlowError((*loc, "per"), "must name a single value, not a list path")
    holdout = given.get("holdout")
    if holdout is not None:
        if not _is_number(holdout) or not 0 <= holdout <= 1:
            raise FlowError((*loc, "holdout"), "must be between 0 and 1")
        if holdout > 0 and any(s.transactional for s in _sends(steps)):
            raise FlowError(
                (*loc, "holdout"), "a flow with a transactional send cannot have a holdout"
            )
        holdout = float(holdout)
    enabled = given.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FlowError((*loc, "enabled"), "must be true or false")
    return FlowDef(
        trigger=trigger,
        steps=steps,
        exit_on=tuple(exits),
        filters=filters,
        re_entry=re_entry,
        on_retrigger=on_retrigger,
        per=per,
        holdout=holdout,
        enabled=enabled,
        builtin=builtin,
    )


def _segment(value: Any, loc: Loc, names: frozenset[str]) -> SegmentDef:
    return SegmentDef(cond=condition(value, Scope(None, names), loc))


def _switch(value: Any, section: str, name: str, built_ins: Mapping[str, Any]) -> bool | None:
    """What ``NAME: {enabled: BOOL}`` sets for the built-in ``name`` of ``section``; None
    for a definition."""
    if not isinstance(value, Mapping) or set(value) != {"enabled"}:
        return None
    enabled = value["enabled"]
    if not isinstance(enabled, bool):  # 0 or "no" would read as false in Python
        raise FlowError((section, name, "enabled"), "must be true or false")
    if name not in built_ins:
        said = "true" if enabled else "false"
        kind = section.removesuffix("s")
        raise FlowError((section, name), f"enabled: {said} names no built-in {kind}")
    return enabled


def _named(section: str, value: Any) -> Mapping[str, Any]:
    given = _mapping({} if value is None else value, (section,))
    for name in given:
        if not _NAME.match(name):
            raise FlowError((section, name), "not a name (letters, digits and _)")
    return given


def parse_language(segments: Any, flows: Any, defaults: Language | None = None) -> Language:
    """A playbook's ``segments`` and ``flows`` sections, laid over ``defaults``.

    A name already in the defaults is replaced whole; ``NAME: {enabled: false}``
    turns a default one off (a segment turned off never matches). Every segment
    a condition or a ``segment_enter`` names must exist, and no segment may
    refer to itself through others.
    """
    base_segments, base_flows = defaults if defaults is not None else ({}, {})
    out_segments = dict(base_segments)
    given_segments = _named("segments", segments)
    names = frozenset(base_segments) | frozenset(given_segments)
    for name, value in given_segments.items():
        switch = _switch(value, "segments", name, base_segments)
        if switch is not None:
            if not switch:
                out_segments[name] = SegmentDef(cond=None, enabled=False)
        else:
            out_segments[name] = _segment(value, ("segments", name), names)
    out_flows = dict(base_flows)
    for name, value in _named("flows", flows).items():
        switch = _switch(value, "flows", name, base_flows)
        if switch is not None:
            out_flows[name] = base_flows[name].model_copy(update={"enabled": switch})
        else:
            flow = parse_flow(value, ("flows", name), builtin=defaults is None, segments=names)
            base = base_flows.get(name)
            # A built-in written out unchanged (a copy of the default playbook) stays built-in.
            same = base is not None and flow.model_copy(update={"builtin": True}) == base
            out_flows[name] = base if same and base is not None else flow
    _check_segments(out_segments)
    for name, flow in out_flows.items():
        _check_flow_refs(name, flow, out_segments)
    return out_segments, out_flows


def _check_segments(segments: Mapping[str, SegmentDef]) -> None:
    for name, segment in segments.items():
        _check_refs(segment.cond, segments, ("segments", name))
    for start in segments:
        trail = [start]
        _walk(start, trail, segments)


def _walk(name: str, trail: list[str], segments: Mapping[str, SegmentDef]) -> None:
    for ref in dict.fromkeys(_segment_refs(segments[name].cond)):
        if ref == trail[0]:
            cycle = " -> ".join([*trail, ref])
            raise FlowError(("segments", trail[0]), f"refers to itself ({cycle})")
        if ref not in trail:
            _walk(ref, [*trail, ref], segments)


def _check_flow_refs(name: str, flow: FlowDef, segments: Mapping[str, SegmentDef]) -> None:
    loc: Loc = ("flows", name)
    trigger = flow.trigger
    if isinstance(trigger, SegmentEnter) and trigger.segment_enter not in segments:
        raise FlowError(
            (*loc, "trigger", "segment_enter"), f"unknown segment {trigger.segment_enter!r}"
        )
    for n, cond in enumerate(flow.filters):
        _check_refs(cond, segments, (*loc, "filters", n))
    for cond in _branch_conds(flow.steps):
        _check_refs(cond, segments, (*loc, "steps"))


def compose(defaults: Language, segments: Any, flows: Any) -> Language:
    """A shop's sections over the default playbook's (``parse_language`` with defaults)."""
    return parse_language(segments, flows, defaults)


def segments_used(flow: FlowDef, segments: Mapping[str, SegmentDef]) -> list[str]:
    """The segments a flow depends on, directly or through other segments, in first-use order."""
    direct: list[str] = []
    if isinstance(flow.trigger, SegmentEnter):
        direct.append(flow.trigger.segment_enter)
    for cond in (*flow.filters, *_branch_conds(flow.steps)):
        direct += _segment_refs(cond)
    seen: dict[str, None] = {}
    pending = list(direct)
    while pending:
        name = pending.pop(0)
        if name in seen or name not in segments:
            continue
        seen[name] = None
        pending += _segment_refs(segments[name].cond)
    return list(seen)
