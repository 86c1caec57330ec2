"""The one flow interpreter: every campaign, built-in or a shop's own, runs here.

The core keeps the facts (orders, carts, views, traits, stage moves) and calls
this module once per cause, after its fact handler: an event (``on_event``), a
due timer (``on_timer``, then ``after_cause``) or a merge (``after_cause``).
A run that waits is stored in the record (``CustomerState.runs``) and its
wake-up is a timer like any other (``schedule_flows``), so the runtime, the
heap, the backtest and the worker need nothing new, and a replay repeats every
id: a run's id is a hash of the customer, the flow, the ``per`` value and the
cause that started it, and a trigger's id a hash of that run and the step.

Order within one cause: runs whose flow changed under them end; ``exit_on``
ends runs; the stages entered start their flows; the event starts its flows;
then segments and date deadlines are brought up to date.

What it runs is the playbook's ``program``, compiled once; a send's payload is
built in ``payload`` and a date flow's next moment worked out in ``dates``. The
core calls ``activity`` to keep the facts some conditions read and ``legacy`` to
adopt the records an older version wrote; neither runs a flow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lifecycle.flows.counts import flow_event
from lifecycle.flows.dates import date_trait, next_moment, schedule_date
from lifecycle.flows.effects import Effects, step_ctx
from lifecycle.flows.model import Branch, Send, Wait
from lifecycle.flows.payload import order_of, send_step
from lifecycle.flows.program import CompiledFlow, Program, program
from lifecycle.flows.runs import Live, Run, run_key
from lifecycle.flows.turns import SEGMENTS_TIMER, Ahead
from lifecycle.ids import stable_id
from lifecycle.policy import in_holdout
from lifecycle.state import CustomerState, FlowRun, trusted

if TYPE_CHECKING:
    from lifecycle.playbook import Playbook
    from schemas.events import Event

__all__ = [
    "DATE_PREFIX",
    "FLOW_PREFIX",
    "after_cause",
    "date_traits",
    "on_erase",
    "on_event",
    "on_timer",
    "schedule_flows",
    "take_runs",
    "unscheduled_dates",
]

FLOW_PREFIX = "flow:"
"""Timer names of waiting runs: the prefix, then the run's key (``flow`` or ``flow:value``)."""
DATE_PREFIX = "date:"
"""Timer names of date flows: the prefix, then the flow's name."""


# --- the record's timers ---------------------------------------------------------------


def schedule_flows(state: CustomerState, timers: dict[str, datetime]) -> None:
    """Add each waiting run's wake-up, each date flow's next date and the next segment
    turn to ``timers``."""
    for key, run in state.runs.items():
        timers[FLOW_PREFIX + key] = run.wake_at
    for name, due in state.dates.items():
        timers[DATE_PREFIX + name] = due
    if state.segments_due is not None:
        timers[SEGMENTS_TIMER] = state.segments_due


# --- conditions ------------------------------------------------------------------------


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


def _end(fx: Effects, key: str, reason: str) -> None:
    run = fx.state.runs.pop(key)
    fx.flow_events.append(flow_event(run.flow, "exited", reason))


def _start(fx: Effects, cf: CompiledFlow, event: Any, value: str = "") -> None:
    """A trigger of ``cf`` for this cause: start a run unless run control says not to."""
    state = fx.state
    flow = cf.flow
    key = run_key(cf.name, value)
    active = state.runs.get(key)
    name = cf.name
    if active is not None and (flow.on_retrigger == "ignore" or fx.at < active.started_at):
        fx.flow_events.append(flow_event(name, "skipped", "running"))
        return
    if flow.re_entry != "always":
        last = state.entered.get(key)
        if last is not None and (
            flow.re_entry == "once"
            or (isinstance(flow.re_entry, timedelta) and fx.at - last < flow.re_entry)
        ):
            fx.flow_events.append(flow_event(name, "skipped", "re_entry"))
            return
    if active is not None:
        _end(fx, key, "restarted")
    fx.flow_events.append(flow_event(name, "entered"))
    if not _filters(fx, cf):
        fx.flow_events.append(flow_event(name, "exited", "filters"))
        return
    if flow.re_entry != "always":
        # Only a run that got past the entry filters uses up re_entry, as a profile a
        # flow filter skips in Klaviyo or Customer.io may still enter later.
        state.entered[key] = fx.at
    customer = state.customer_id  # the run's id and holdout only for a run that goes on
    run = Live(
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
    ctx = step_ctx(fx)
    for test in filters:  # noqa: SIM110 - no generator per call on the hot path
        if not test(ctx):
            return False
    return True


def _run(fx: Effects, cf: CompiledFlow, run: Run, key: str, path: str | None, event: Any) -> None:
    """Run the steps from ``path`` until a wait (the run sleeps) or the end."""
    state = fx.state
    while path is not None:
        step = cf.steps[path]
        if isinstance(step, Wait):
            state.runs[key] = _asleep(cf, run, path, fx.at + step.wait, event)
            return
        if isinstance(step, Branch):
            if cf.branches[path](step_ctx(fx)):
                path = f"{path}.then.0"
            elif step.else_:
                path = f"{path}.else.0"
            else:
                path = cf.after[path]
            continue
        assert isinstance(step, Send)
        if not _filters(fx, cf):
            state.runs.pop(key, None)
            fx.flow_events.append(flow_event(cf.name, "exited", "filters"))
            return
        send_step(fx, cf, run, path, step.send, event)
        path = cf.after[path]
    state.runs.pop(key, None)
    fx.flow_events.append(flow_event(cf.name, "exited", "completed"))


def _asleep(cf: CompiledFlow, run: Run, path: str, wake: datetime, event: Any) -> FlowRun:
    order, properties = run.order, run.properties
    if event is not None:
        if cf.keep_order and getattr(event, "type", None) == "purchase":
            order = order_of(event)
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


# --- causes ------------------------------------------------------------------------------


def _reconcile(fx: Effects, prog: Program) -> None:
    """Runs whose flow is gone or off, or whose step is no longer a wait, end ``flow_changed``."""
    waits = prog.waits
    changed = [key for key, run in fx.state.runs.items() if (run.flow, run.step) not in waits]
    for key in changed:
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
                    fx.flow_events.append(flow_event(name, "skipped", "per_missing"))
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
            key = run_key(cf.name, str(value))
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
    """A due ``flow:``, ``date:`` or ``segments`` timer; False for a timer that is none."""
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
            schedule_date(fx, cf)
        return True
    if name == SEGMENTS_TIMER:
        state.segments_due = None  # the segments are evaluated, and the next turn found, next
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
                schedule_date(fx, prog.flows[name])


def date_traits(playbook: Playbook) -> dict[str, str]:
    """Each date flow's trait (flow: trait name), for a rebuild to see which records
    may lack one (``schemas.internal.DatedSummary``)."""
    prog = program(playbook)
    return {name: date_trait(prog.flows[name]) for name in prog.index.date_flows}


def unscheduled_dates(
    state: CustomerState, playbook: Playbook, at: datetime
) -> dict[str, datetime]:
    """The next moment, after ``at``, of each date flow the record has none for though
    its trait is a date: a flow the playbook gained since the record last changed (a
    worker restarted with a new playbook; a record's own changes schedule every date
    flow). A due timer brings them in (``core._advance``), so a birthday flow added to
    a running shop reaches the customers who are not active too."""
    if not state.profile.traits:  # every date flow reads a trait: nothing to look up
        return {}
    prog = program(playbook)
    names = prog.index.date_flows
    if not names:
        return {}
    zone = playbook.policies.quiet_hours.default_timezone
    found: dict[str, datetime] = {}
    for name in names:
        if name not in state.dates:
            due = next_moment(state, prog.flows[name], zone, at)
            if due is not None:
                found[name] = due
    return found


def _segments(fx: Effects, prog: Program) -> None:
    """Evaluate the tracked segments; a turn from false to true starts their flows.

    A record that existed before a segment was tracked gets its membership set
    silently the first time (no blast when a segment is added); a record this
    input created starts with every segment false, so it can enter. The earliest instant
    at which time alone turns one of them (``lifecycle.flows.turns``) is kept as the
    record's ``segments`` timer, which evaluates them again then."""
    state = fx.state
    ctx = step_ctx(fx)
    by_segment = prog.index.by_segment
    for segment, test in prog.segments.items():
        now = test(ctx)
        before = state.segments.get(segment)
        state.segments[segment] = now
        if (now and before is False) or (now and before is None and fx.fresh):
            for name in by_segment.get(segment, ()):
                _start(fx, prog.flows[name], None)
    turns = prog.turns
    if turns or state.segments_due is not None:
        ahead = Ahead(ctx)
        due = None
        for segment, turn in turns.items():
            when = turn(ahead, state.segments[segment])
            if when is not None and (due is None or when < due):
                due = when
        if due != state.segments_due:  # a model's attribute set costs a validation hook
            state.segments_due = due


# --- merges ------------------------------------------------------------------------------


def take_runs(fx: Effects, runs: Iterable[FlowRun]) -> None:
    """A merged visitor's waiting runs go on as this customer's, at their step and wake
    time. A run of the same flow and key the customer already has goes on instead: the
    visitor's ends, ``merged``, so every run entered is still exited or waiting once."""
    state = fx.state
    for run in runs:
        key = run_key(run.flow, run.key)
        if key in state.runs:
            fx.flow_events.append(flow_event(run.flow, "exited", "merged"))
        else:
            state.runs[key] = run
