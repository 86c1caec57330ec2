"""The one flow interpreter: every campaign, built-in or a shop's own, runs here.

The core keeps the facts (orders, carts, views, traits, stage moves) and calls
this module once per cause, after its fact handler: an event (``on_event``), a
due timer (``on_timer``, then ``after_cause``) or a merge (``after_cause``).
A run that waits is stored in the record (``CustomerState.runs``) and its
wake-up is a timer like any other (``schedule_flows``), so the runtime, the
heap, the backtest and the worker need nothing new, and a replay repeats every
id: a run's id is a hash of the customer, the flow, the ``per`` value and the
cause that started it, and a trigger's id a hash of that run and the step.

Order within one cause (flows plan, section 2.5): runs whose flow changed under
them end; ``exit_on`` ends runs; the stages entered start their flows; the
event starts its flows; then segments and date deadlines are brought up to date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from lifecycle.flows.closures import event_test, record_test
from lifecycle.flows.compile import FlowIndex, build_index, step_table
from lifecycle.flows.conditions import Ctx, record_value
from lifecycle.flows.counts import FlowEvent
from lifecycle.flows.model import (
    Branch,
    DateTrigger,
    EventMatch,
    FlowDef,
    Picker,
    SegmentRef,
    Send,
    SendSpec,
    Step,
    Wait,
)
from lifecycle.ids import stable_id
from lifecycle.playbook import CampaignRule, Playbook
from lifecycle.policy import ResolvedSend, in_holdout
from lifecycle.state import (
    ActivityMark,
    CustomerState,
    FlowRun,
    RunLine,
    RunOrder,
    ViewMark,
    trusted,
)
from schemas.records import Campaign, Stage

if TYPE_CHECKING:
    from lifecycle.scoring import ScoresAt
    from schemas.events import Event

__all__ = [
    "DATE_PREFIX",
    "FLOW_PREFIX",
    "Effects",
    "Program",
    "adopt_legacy",
    "after_cause",
    "log_purchase",
    "log_view",
    "next_date",
    "on_erase",
    "on_event",
    "on_timer",
    "program",
    "remember_view",
    "schedule_flows",
]

FLOW_PREFIX = "flow:"
"""Timer names of waiting runs: the prefix, then the run's key (``flow`` or ``flow:value``)."""
DATE_PREFIX = "date:"
"""Timer names of date flows: the prefix, then the flow's name."""

LOG_KEPT = 500
"""Entries a bought or view log keeps at most (the oldest go first)."""
_DEFAULT_MAX_PRODUCTS = 10


class Effects(Protocol):
    """What the interpreter needs from the core's step: the record, the cause, the sends."""

    state: CustomerState
    playbook: Playbook
    scores: ScoresAt
    entered: list[Stage]
    fresh: bool
    flow_ctx: Ctx | None

    at: datetime
    ref: str
    flow_events: list[FlowEvent]

    def greeting(self) -> dict[str, Any]: ...
    def recommend(self, seeds: list[str]) -> list[str]: ...
    def send(
        self, send: ResolvedSend, *, trigger_id: str, holdout: bool, payload: dict[str, Any]
    ) -> None: ...


# --- the compiled program --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """One enabled flow, ready to run: its steps by index path and each send resolved."""

    name: str
    flow: FlowDef
    steps: Mapping[str, Step]
    after: Mapping[str, str | None]
    """For each step path, the path that runs next (None: the run is over)."""
    sends: Mapping[str, ResolvedSend]
    holdout: float
    keep_order: bool
    keep_properties: bool
    max_products: int
    where: Callable[[Any], bool] | None
    """The event trigger's ``where``, compiled (None: every event of the type)."""
    exits: tuple[tuple[str, Callable[[Any], bool] | None], ...]
    filters: tuple[Callable[[Ctx], bool], ...]
    branches: Mapping[str, Callable[[Ctx], bool]]


@dataclass(frozen=True, slots=True)
class Program:
    """A playbook's flows compiled once: what the interpreter runs for every cause."""

    flows: Mapping[str, CompiledFlow]
    index: FlowIndex
    segments: Mapping[str, Callable[[Ctx], bool]]
    """Each tracked segment (``index.tracked_segments``), compiled."""
    source: tuple[object, ...]
    """The playbook fields it was compiled from (checked by identity)."""


def program(playbook: Playbook) -> Program:
    """The playbook's compiled flows, compiled on first use and kept on the playbook
    (compiled again for a copy whose flows, segments, campaigns or policies differ)."""
    fields = playbook.__dict__
    derived = playbook.derived
    current = derived.value
    if current is not None:
        flows, segments, campaigns, policies = current.source
        if (
            flows is fields["flows"]
            and segments is fields["segments"]
            and campaigns is fields["campaigns"]
            and policies is fields["policies"]
        ):
            return current  # type: ignore[no-any-return]
    source = (playbook.flows, playbook.segments, playbook.campaigns, playbook.policies)
    flows, index = _compile(playbook)
    segments = {
        name: record_test(SegmentRef(name=name), playbook.segments)
        for name in index.tracked_segments
    }
    fresh = Program(flows=flows, index=index, segments=segments, source=source)
    derived.value = fresh
    return fresh


def _rule(playbook: Playbook, campaign: str) -> CampaignRule | None:
    if campaign not in Campaign.__members__.values():
        return None
    return playbook.campaigns.get(Campaign(campaign))


def _knobbed_data(data: Mapping[str, Any], rule: CampaignRule) -> dict[str, Any]:
    """A built-in send's ``data`` with the ``campaigns.X`` knobs it names laid over it."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "survey":
            out[key] = rule.survey
        elif key == "perks":
            out[key] = list(rule.perks)
        elif key == "discount_percent" and isinstance(value, Picker):
            tiers = rule.discount_by_tier
            if tiers is not None:
                out[key] = Picker(by=value.by, values={k: str(v) for k, v in tiers.items()})
        elif key == "discount_percent":
            if rule.discount_percent is not None:
                out[key] = str(rule.discount_percent)
        else:
            out[key] = value
    return out


def _with_knobs(name: str, flow: FlowDef, playbook: Playbook) -> FlowDef:
    """A built-in flow as the legacy ``campaigns.NAME`` knobs say (flows plan, section 3.3):
    ``enabled`` switches it, ``delay`` is its first wait, the offer fields its data."""
    if not flow.builtin:
        return flow
    rule = _rule(playbook, name)
    if rule is None:
        return flow
    if not rule.enabled:
        return flow.model_copy(update={"enabled": False})
    steps: list[Step] = []
    delayed = False
    for step in flow.steps:
        if isinstance(step, Wait) and not delayed and rule.delay is not None:
            step = Wait(wait=rule.delay)  # noqa: PLW2901
            delayed = True
        elif isinstance(step, Send) and step.send.campaign == name:
            step = Send(  # noqa: PLW2901
                send=step.send.model_copy(update={"data": _knobbed_data(step.send.data, rule)})
            )
        steps.append(step)
    return flow.model_copy(update={"steps": tuple(steps)})


def _resolve(spec: SendSpec, flow: str, path: str, playbook: Playbook) -> ResolvedSend:
    """Send field, over the ``campaigns.<name>`` rule of a built-in campaign, over defaults."""
    rule = _rule(playbook, spec.campaign)
    base = (
        ResolvedSend.from_rule(spec.campaign, rule, flow=flow, step=path)
        if rule is not None
        else ResolvedSend(campaign=spec.campaign, flow=flow, step=path)
    )
    return ResolvedSend(
        campaign=spec.campaign,
        flow=flow,
        step=path,
        channel=spec.channel or base.channel,
        transactional=base.transactional if spec.transactional is None else spec.transactional,
        priority=base.priority if spec.priority is None else spec.priority,
        variants=base.variants if spec.variants is None else spec.variants,
        attribution_window=base.attribution_window,
        goal=base.goal,
    )


def _after(steps: tuple[Step, ...], prefix: str, then: str | None) -> dict[str, str | None]:
    table: dict[str, str | None] = {}
    for n, step in enumerate(steps):
        path = f"{prefix}{n}"
        following = f"{prefix}{n + 1}" if n + 1 < len(steps) else then
        table[path] = following
        if isinstance(step, Branch):
            table |= _after(step.then, f"{path}.then.", following)
            table |= _after(step.else_, f"{path}.else.", following)
    return table


def _holdout(flow: FlowDef, sends: Iterable[ResolvedSend], playbook: Playbook) -> float:
    """Flow ``holdout`` > the first send's built-in campaign rule > the default; never
    for a flow whose first send is transactional."""
    first = next(iter(sends), None)
    if first is not None and first.transactional:
        return 0.0
    if flow.holdout is not None:
        return flow.holdout
    rule = None if first is None else _rule(playbook, first.campaign)
    if rule is not None:
        return playbook.holdout_share(rule)
    return playbook.policies.default_holdout


def _where(trigger: object) -> Callable[[Any], bool] | None:
    if isinstance(trigger, EventMatch) and trigger.where is not None:
        return event_test(trigger.where)
    return None


def _compile(playbook: Playbook) -> tuple[dict[str, CompiledFlow], FlowIndex]:
    flows = {name: _with_knobs(name, flow, playbook) for name, flow in playbook.flows.items()}
    index = build_index(playbook.segments, flows)
    compiled: dict[str, CompiledFlow] = {}
    for name, flow in index.flows.items():
        steps = step_table(flow.steps)
        sends = {
            path: _resolve(step.send, name, path, playbook)
            for path, step in steps.items()
            if isinstance(step, Send)
        }
        rule = _rule(playbook, name)
        includes = {i for s in steps.values() if isinstance(s, Send) for i in s.send.include}
        compiled[name] = CompiledFlow(
            name=name,
            flow=flow,
            steps=steps,
            after=_after(flow.steps, "", None),
            sends=sends,
            holdout=_holdout(flow, sends.values(), playbook),
            keep_order="order" in includes,
            keep_properties="properties" in includes,
            max_products=_DEFAULT_MAX_PRODUCTS if rule is None else rule.max_products,
            where=_where(flow.trigger),
            exits=tuple((m.event, _where(m)) for m in flow.exit_on),
            filters=tuple(record_test(c, playbook.segments) for c in flow.filters),
            branches={
                path: record_test(step.if_, playbook.segments)
                for path, step in steps.items()
                if isinstance(step, Branch)
            },
        )
    return compiled, index


# --- the record's timers ---------------------------------------------------------------


def schedule_flows(state: CustomerState, timers: dict[str, datetime]) -> None:
    """Add each waiting run's wake-up and each date flow's next date to ``timers``."""
    for key, run in state.runs.items():
        timers[FLOW_PREFIX + key] = run.wake_at
    for name, due in state.dates.items():
        timers[DATE_PREFIX + name] = due


# --- conditions ------------------------------------------------------------------------


def _ctx(fx: Effects) -> Ctx:
    """The step's ``Ctx``, made once: it reads the record when asked, so one serves
    every condition of the step however the record changes in between."""
    ctx = fx.flow_ctx
    if ctx is None:
        ctx = fx.flow_ctx = Ctx(
            state=fx.state,
            now=fx.at,
            scores=fx.scores,
            tiers=fx.playbook.scores.clv_tiers,
            segments=fx.playbook.segments,
        )
    return ctx


class _Refund:
    """A refund event as ``where`` sees it: its fields, and ``remaining`` (the order's net
    after it, None for an order the customer never placed)."""

    def __init__(self, event: Any, remaining: Decimal | None) -> None:
        self._event = event
        self.remaining = remaining

    def __getattr__(self, name: str) -> Any:
        return getattr(self._event, name)


def _seen(event: Event, state: CustomerState) -> Any:
    if event.type == "refund":
        return _Refund(event, state.order_net.get(event.order_id))
    return event


def _field(event: Any, path: str) -> Any:
    """The value of a single-valued event path (``per``), None when absent."""
    if path.startswith("properties."):
        return (getattr(event, "properties", None) or {}).get(path.removeprefix("properties."))
    return getattr(event, path, None)


def _matches(test: Callable[[Any], bool] | None, event: Any) -> bool:
    return test is None or test(event)


# --- running -----------------------------------------------------------------------------


def _key(name: str, value: str) -> str:
    return f"{name}:{value}" if value else name


def _end(fx: Effects, key: str, reason: str) -> None:
    run = fx.state.runs.pop(key)
    fx.flow_events.append(FlowEvent(run.flow, "exited", reason))


def _start(fx: Effects, cf: CompiledFlow, event: Any, value: str = "") -> None:
    """A trigger of ``cf`` for this cause: start a run unless run control says not to."""
    state = fx.state
    flow = cf.flow
    key = _key(cf.name, value)
    active = state.runs.get(key)
    name = cf.name
    if active is not None and (flow.on_retrigger == "ignore" or fx.at < active.started_at):
        fx.flow_events.append(FlowEvent(name, "skipped", "running"))
        return
    if flow.re_entry != "always":
        last = state.entered.get(key)
        if last is not None and (
            flow.re_entry == "once"
            or (isinstance(flow.re_entry, timedelta) and fx.at - last < flow.re_entry)
        ):
            fx.flow_events.append(FlowEvent(name, "skipped", "re_entry"))
            return
        state.entered[key] = fx.at
    if active is not None:
        _end(fx, key, "restarted")
    fx.flow_events.append(FlowEvent(name, "entered"))
    if not _filters(fx, cf):
        fx.flow_events.append(FlowEvent(name, "exited", "filters"))
        return
    customer = state.customer_id  # the run's id and holdout only for a run that goes on
    run = _Live(
        flow=name,
        key=value,
        run_id=stable_id("run", customer, name, value, fx.ref),
        started_at=fx.at,
        holdout=cf.holdout > 0 and in_holdout(name, customer, cf.holdout),
    )
    _run(fx, cf, run, key, "0", event)


def _filters(fx: Effects, cf: CompiledFlow) -> bool:
    filters = cf.filters
    if not filters:
        return True
    ctx = _ctx(fx)
    for test in filters:  # noqa: SIM110 - no generator per call on the hot path
        if not test(ctx):
            return False
    return True


class _Live(NamedTuple):
    """A run this cause starts: stored (as a ``FlowRun``) only once it waits."""

    flow: str
    key: str
    run_id: str
    started_at: datetime
    holdout: bool
    order: RunOrder | None = None
    properties: dict[str, Any] | None = None


Run = FlowRun | _Live


def _run(fx: Effects, cf: CompiledFlow, run: Run, key: str, path: str | None, event: Any) -> None:
    """Run the steps from ``path`` until a wait (the run sleeps) or the end."""
    state = fx.state
    while path is not None:
        step = cf.steps[path]
        if isinstance(step, Wait):
            state.runs[key] = _asleep(cf, run, path, fx.at + step.wait, event)
            return
        if isinstance(step, Branch):
            if cf.branches[path](_ctx(fx)):
                path = f"{path}.then.0"
            elif step.else_:
                path = f"{path}.else.0"
            else:
                path = cf.after[path]
            continue
        assert isinstance(step, Send)
        if not _filters(fx, cf):
            state.runs.pop(key, None)
            fx.flow_events.append(FlowEvent(cf.name, "exited", "filters"))
            return
        _send(fx, cf, run, path, step.send, event)
        path = cf.after[path]
    state.runs.pop(key, None)
    fx.flow_events.append(FlowEvent(cf.name, "exited", "completed"))


def _asleep(cf: CompiledFlow, run: Run, path: str, wake: datetime, event: Any) -> FlowRun:
    order, properties = run.order, run.properties
    if event is not None:
        if cf.keep_order and getattr(event, "type", None) == "purchase":
            order = _order(event)
        if cf.keep_properties:
            properties = dict(getattr(event, "properties", None) or {})
    return trusted(
        FlowRun,
        flow=run.flow,
        key=run.key,
        run_id=run.run_id,
        started_at=run.started_at,
        step=path,
        wake_at=wake,
        holdout=run.holdout,
        order=order,
        properties=properties,
    )


def _order(event: Any) -> RunOrder:
    items = tuple(
        trusted(RunLine, product_id=i.product_id, quantity=i.quantity, unit_price=i.unit_price)
        for i in event.items
    )
    return trusted(
        RunOrder,
        order_id=event.order_id,
        total=event.total,
        currency=event.currency,
        items=items,
        products=tuple(i.product_id for i in items),
    )


def _send(fx: Effects, cf: CompiledFlow, run: Run, path: str, spec: SendSpec, event: Any) -> None:
    payload = fx.greeting()
    if spec.include:
        order = _run_order(run, event) if _ORDERED & set(spec.include) else None
        for include in spec.include:
            payload |= _include(fx, cf, run, spec, include, event, order)
    if spec.data:
        ctx: Ctx | None = None
        for name, value in spec.data.items():
            if isinstance(value, Picker):
                ctx = ctx or _ctx(fx)
                picked = _pick(value, ctx)
                if picked is not _NONE:
                    payload[name] = picked
            else:
                payload[name] = value
    send = cf.sends[path]
    customer = fx.state.customer_id
    fx.send(
        send,
        trigger_id=stable_id("trigger", customer, cf.name, run.run_id, path),
        holdout=run.holdout and not send.transactional,
        payload=payload,
    )


_NONE = object()


def _pick(picker: Picker, ctx: Ctx) -> Any:
    value = record_value(picker.by, ctx)
    choice: str | None
    if isinstance(value, bool):
        choice = "true" if value else "false"
    elif isinstance(value, Stage):
        choice = value.value
    else:
        choice = None if value is None else str(value)
    if choice is not None and choice in picker.values:
        return picker.values[choice]
    return picker.default if picker.has_default else _NONE


def _order_payload(order: RunOrder) -> dict[str, Any]:
    out: dict[str, Any] = {"order_id": order.order_id}
    if order.total is not None:
        out["total"] = str(order.total)
        out["currency"] = order.currency
        out["items"] = [
            {"product_id": i.product_id, "quantity": i.quantity, "unit_price": str(i.unit_price)}
            for i in order.items
        ]
    out["products"] = list(order.products)
    return out


def _run_order(run: Run, event: Any) -> RunOrder | None:
    if event is not None and getattr(event, "type", None) == "purchase":
        return _order(event)
    return run.order


def _viewed(fx: Effects, cf: CompiledFlow, run: Run) -> list[str]:
    since = run.started_at
    views = [v.product for v in reversed(fx.state.views) if v.at >= since]
    return views[: cf.max_products]


_ORDERED = frozenset({"order", "recommendations"})
"""The includes that read the run's order."""


def _include(
    fx: Effects,
    cf: CompiledFlow,
    run: Run,
    spec: SendSpec,
    include: str,
    event: Any,
    order: RunOrder | None,
) -> dict[str, Any]:
    state = fx.state
    if include == "cart":
        lines = state.cart
        value = sum((line.unit_price * line.quantity for line in lines.values()), Decimal(0))
        return {
            "cart_id": state.cart_id,
            "items": [
                {"product_id": p, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                for p, line in lines.items()
            ],
            "value": str(value),
            "currency": next((line.currency for line in lines.values()), None),
        }
    if include == "order":
        return {} if order is None else _order_payload(order)
    if include == "viewed_products":
        return {"products": _viewed(fx, cf, run)}
    if include == "recommendations":
        if order is not None:
            seeds = list(order.products)
        elif "viewed_products" in spec.include:
            seeds = _viewed(fx, cf, run)
        else:
            seeds = list(state.bought)
        return {"recommendations": fx.recommend(seeds)}
    if include == "referral_code":
        return {"referral_code": stable_id("referral", state.customer_id)[:10].upper()}
    if include == "properties":
        given = getattr(event, "properties", None) if event is not None else run.properties
        return {"properties": dict(given or {})}
    return {}


# --- causes ------------------------------------------------------------------------------


def _reconcile(fx: Effects, prog: Program) -> None:
    """Runs whose flow is gone or off, or whose step is no longer a wait, end ``flow_changed``."""
    runs = fx.state.runs
    for key, run in list(runs.items()):
        cf = prog.flows.get(run.flow)
        if cf is None or not isinstance(cf.steps.get(run.step), Wait):
            _end(fx, key, "flow_changed")


def on_event(fx: Effects, event: Event) -> None:
    """React to one accepted event after the core applied its facts (and stage moves)."""
    prog = program(fx.playbook)
    state = fx.state
    index = prog.index
    kind = event.type
    seen: Any = None
    if state.runs:
        _reconcile(fx, prog)
        exits = index.exits_by_event.get(kind)
        if exits and state.runs:
            running = {run.flow for run in state.runs.values()}
            seen = _seen(event, state)
            for name in exits:
                if name in running:  # exit_on ends runs: a flow without one has nothing to test
                    _exit(fx, prog.flows[name], seen)
    _stages(fx, prog)
    starts = index.triggers_by_event.get(kind)
    if starts:
        seen = seen or _seen(event, state)
        for name in starts:
            cf = prog.flows[name]
            if not _matches(cf.where, seen):
                continue
            value = ""
            if cf.flow.per is not None:
                found = _field(seen, cf.flow.per)
                if found is None:
                    fx.flow_events.append(FlowEvent(name, "skipped", "per_missing"))
                    continue
                value = str(found)
            _start(fx, cf, seen, value)
    _after_change(fx, prog, kind in ("signup", "identify"))


def _exit(fx: Effects, cf: CompiledFlow, event: Any) -> None:
    kind = event.type
    for exit_kind, test in cf.exits:
        if exit_kind == kind and _matches(test, event):
            break
    else:
        return
    runs = fx.state.runs
    per = cf.flow.per
    if per is not None:
        value = _field(event, per)
        if value is not None:
            key = _key(cf.name, str(value))
            if key in runs:
                _end(fx, key, "exit_on")
            return
    for key in [k for k, run in runs.items() if run.flow == cf.name]:
        _end(fx, key, "exit_on")


def _stages(fx: Effects, prog: Program) -> None:
    entered = fx.entered
    if not entered:
        return
    by_stage = prog.index.by_stage
    for stage in entered:
        for name in by_stage.get(stage, ()):
            _start(fx, prog.flows[name], None)
    entered.clear()


def on_timer(fx: Effects, name: str) -> bool:
    """A due ``flow:`` or ``date:`` timer; False for a timer that is neither."""
    prog = program(fx.playbook)
    state = fx.state
    if name.startswith(FLOW_PREFIX):
        key = name.removeprefix(FLOW_PREFIX)
        run = state.runs.get(key)
        if run is None:
            return True
        cf = prog.flows.get(run.flow)
        if cf is None or not isinstance(cf.steps.get(run.step), Wait):
            _end(fx, key, "flow_changed")
            return True
        _run(fx, cf, run, key, cf.after[run.step], None)
        return True
    if name.startswith(DATE_PREFIX):
        flow = name.removeprefix(DATE_PREFIX)
        state.dates.pop(flow, None)
        cf = prog.flows.get(flow)
        if cf is not None:
            _start(fx, cf, None)
            _date(fx, cf)
        return True
    return False


def after_cause(fx: Effects) -> None:
    """What follows any cause that is not an event (a timer, a merge): runs whose flow
    changed end, the stages entered start their flows, segments and dates catch up."""
    prog = program(fx.playbook)
    if fx.state.runs:
        _reconcile(fx, prog)
    _stages(fx, prog)
    _after_change(fx, prog, traits_changed=False)


def on_erase(fx: Effects) -> None:
    """The customer is erased: every waiting run ends, nothing is sent."""
    for key in list(fx.state.runs):
        _end(fx, key, "erased")


# --- segments and dates ------------------------------------------------------------------


def _after_change(fx: Effects, prog: Program, traits_changed: bool) -> None:
    index = prog.index
    if index.tracked_segments:
        _segments(fx, prog)
    if index.date_flows:
        state = fx.state
        for name in index.date_flows:
            if traits_changed or name not in state.dates:
                _date(fx, prog.flows[name])


def _segments(fx: Effects, prog: Program) -> None:
    """Evaluate the tracked segments; a turn from false to true starts their flows.

    A record that existed before a segment was tracked gets its membership set
    silently the first time (no blast when a segment is added); a record this
    input created starts with every segment false, so it can enter."""
    state = fx.state
    ctx = _ctx(fx)
    by_segment = prog.index.by_segment
    for segment, test in prog.segments.items():
        now = test(ctx)
        before = state.segments.get(segment)
        state.segments[segment] = now
        if (now and before is False) or (now and before is None and fx.fresh):
            for name in by_segment.get(segment, ()):
                _start(fx, prog.flows[name], None)


def _on(year: int, month: int, day: int) -> date:
    """``month``/``day`` in ``year``; 29 February is the 28th in other years."""
    if month == 2 and day == 29:
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, month, day)


def next_date(value: Any, at: time, zone: str | None, after: datetime) -> datetime | None:
    """The first moment strictly after ``after`` when the yearly date ``value``
    (``YYYY-MM-DD``) falls at ``at`` local time in ``zone`` (UTC when None); None for
    a value that is not a date."""
    if isinstance(value, date):
        day = value
    elif isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    try:
        tz: Any = ZoneInfo(zone) if zone else UTC
    except (ValueError, KeyError, OSError):
        tz = UTC
    year = after.astimezone(tz).year
    for candidate in (year, year + 1, year + 2):
        local = datetime.combine(_on(candidate, day.month, day.day), at, tzinfo=tz)
        moment = local.astimezone(UTC)
        if moment > after:
            return moment
    return None


def _date(fx: Effects, cf: CompiledFlow) -> None:
    trigger = cf.flow.trigger
    assert isinstance(trigger, DateTrigger)
    state = fx.state
    value = state.profile.traits.get(trigger.date.removeprefix("traits."))
    due = next_date(value, trigger.at, state.profile.timezone, fx.at)
    if due is None:
        state.dates.pop(cf.name, None)
    else:
        state.dates[cf.name] = due


# --- facts some conditions read ----------------------------------------------------------


def remember_view(state: CustomerState, product: str, at: datetime, limit: int) -> None:
    """Keep ``product`` as viewed at ``at`` (distinct, by the last view, at most ``limit``)."""
    views = [v for v in state.views if v.product != product]
    previous = next((v for v in state.views if v.product == product), None)
    last = at if previous is None else max(previous.at, at)
    views.append(trusted(ViewMark, product=product, at=last))
    views.sort(key=lambda v: v.at)
    state.views[:] = views[-limit:]


def _trim(log: list[ActivityMark], now: datetime, window: timedelta | None) -> list[ActivityMark]:
    if window is not None:
        log = [mark for mark in log if mark.at >= now - window]
    return log[-LOG_KEPT:]


def log_purchase(fx: Effects, event: Any) -> None:
    """Keep the order's lines for ``bought`` conditions, if an enabled flow reads them."""
    need = program(fx.playbook).index.bought_log
    if not need.needed:
        return
    state = fx.state
    marks = [
        trusted(
            ActivityMark,
            at=event.occurred_at,
            order_id=event.order_id,
            product_id=item.product_id,
            category=item.category,
        )
        for item in event.items
    ]
    state.bought_log = _trim([*state.bought_log, *marks], fx.at, need.window)


def log_view(fx: Effects, event: Any) -> None:
    """Keep a view for ``viewed`` conditions, if an enabled flow reads them."""
    need = program(fx.playbook).index.view_log
    if not need.needed:
        return
    state = fx.state
    mark = trusted(
        ActivityMark,
        at=event.occurred_at,
        order_id=None,
        product_id=event.product_id,
        category=event.category,
    )
    state.view_log = _trim([*state.view_log, mark], fx.at, need.window)


def fold_views(
    state: CustomerState, marks: Iterable[ActivityMark], now: datetime, playbook: Playbook
) -> None:
    """A merged visitor's views join the customer's ``view_log`` (a union, in time order)
    and, for the products among them, ``views`` (by the last view): what ``viewed``
    conditions and a send's ``viewed_products`` read. Folding the same views twice
    changes nothing."""
    need = program(playbook).index.view_log
    marks = list(marks)
    if not need.needed or not marks:
        return
    union = set(state.view_log).union(marks)
    ordered = sorted(union, key=lambda m: (m.at, m.product_id or "", m.category or ""))
    state.view_log = _trim(ordered, now, need.window)
    limit = playbook.campaigns[Campaign.BROWSE_ABANDONMENT].max_products
    for mark in marks:
        if mark.product_id is not None:
            remember_view(state, mark.product_id, mark.at, limit)


def take_runs(fx: Effects, runs: Iterable[FlowRun]) -> None:
    """A merged visitor's waiting runs go on as this customer's, at their step and wake
    time. A run of the same flow and key the customer already has goes on instead: the
    visitor's ends, ``merged``, so every run entered is still exited or waiting once."""
    state = fx.state
    for run in runs:
        key = _key(run.flow, run.key)
        if key in state.runs:
            fx.flow_events.append(FlowEvent(run.flow, "exited", "merged"))
        else:
            state.runs[key] = run


# --- records an older version wrote -------------------------------------------------------


def adopt_legacy(state: CustomerState, playbook: Playbook) -> None:
    """Turn a pre-flows record's campaign fields into the built-in flows' runs, with
    the same wake-up times, so a mail in flight is neither lost nor sent twice."""
    legacy = state.legacy
    state.legacy = None
    if legacy is None:
        return
    prog = program(playbook)
    customer = state.customer_id

    def adopt(name: str, value: str, started: datetime, order: RunOrder | None = None) -> None:
        cf = prog.flows.get(name)
        if cf is None:
            return
        first = cf.steps.get("0")
        if not isinstance(first, Wait):
            return
        state.runs[_key(name, value)] = FlowRun(
            flow=name,
            key=value,
            run_id=stable_id("run", customer, name, value, "legacy"),
            started_at=started,
            step="0",
            wake_at=started + first.wait,
            holdout=cf.holdout > 0 and in_holdout(name, customer, cf.holdout),
            order=order,
        )

    if legacy.cart_touched_at is not None and state.cart:
        adopt(Campaign.CART_ABANDONMENT.value, "", legacy.cart_touched_at)
    if legacy.browse_started_at is not None and legacy.browsed:
        for product in legacy.browsed:
            state.views.append(ViewMark(product=product, at=legacy.browse_started_at))
        adopt(Campaign.BROWSE_ABANDONMENT.value, "", legacy.browse_started_at)
    for order_id, review in legacy.pending_reviews.items():
        order = RunOrder(
            order_id=order_id, total=None, currency=None, items=(), products=tuple(review.products)
        )
        adopt(Campaign.REVIEW_REQUEST.value, order_id, review.at, order)
    if (
        state.stage is Stage.FIRST_TIME_BUYER
        and not legacy.nudged
        and state.first_order_at is not None
    ):
        adopt(Campaign.SECOND_PURCHASE_NUDGE.value, "", state.first_order_at)
    if state.signed_up_at is not None:
        welcome = prog.flows.get(Campaign.WELCOME.value)
        if welcome is not None and welcome.flow.re_entry != "always":
            state.entered[Campaign.WELCOME.value] = state.signed_up_at
