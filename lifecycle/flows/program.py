"""A playbook's flows compiled for the interpreter: each step by its index path,
each send resolved, each condition a closure.

Compiling happens once per playbook (``program`` keeps the result on it), so a
cause pays only for the lookups: the legacy ``campaigns.NAME`` knobs are laid
over the built-in flows here, and every send's channel, priority and holdout is
settled here, not at the send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.flows.closures import event_test, record_test
from lifecycle.flows.compile import FlowIndex, build_index, step_table
from lifecycle.flows.conditions import Ctx
from lifecycle.flows.model import (
    Branch,
    EventMatch,
    FlowDef,
    Picker,
    SegmentRef,
    Send,
    SendSpec,
    Step,
    Wait,
)
from lifecycle.flows.turns import Turn, turn_finder
from lifecycle.playbook import CampaignRule, Playbook
from lifecycle.policy import ResolvedSend
from lifecycle.units import percent_number
from schemas.records import Campaign

__all__ = ["CompiledFlow", "Program", "program"]

_DEFAULT_MAX_PRODUCTS = 10


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
    turns: Mapping[str, Turn]
    """Each tracked segment that time alone can turn, with its turn finder."""
    source: tuple[object, ...]
    """The playbook fields it was compiled from (checked by identity)."""
    waits: frozenset[tuple[str, str]]
    """Every (flow, step path) a run may sleep at: a stored run at any other ended when
    its flow changed, which every cause checks of every run."""


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
    turns = {
        name: turn
        for name in index.tracked_segments
        if (turn := turn_finder(name, playbook.segments)) is not None
    }
    waits = frozenset(
        (name, path)
        for name, cf in flows.items()
        for path, step in cf.steps.items()
        if isinstance(step, Wait)
    )
    fresh = Program(
        flows=flows, index=index, segments=segments, turns=turns, source=source, waits=waits
    )
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
                out[key] = Picker(
                    by=value.by, values={k: percent_number(v) for k, v in tiers.items()}
                )
        elif key == "discount_percent":
            if rule.discount_percent is not None:
                out[key] = percent_number(rule.discount_percent)
        else:
            out[key] = value
    return out


def _with_knobs(name: str, flow: FlowDef, playbook: Playbook) -> FlowDef:
    """A built-in flow as the legacy ``campaigns.NAME`` knobs say (docs/flows.md, The playbook):
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
