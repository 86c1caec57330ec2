"""The playbook: every threshold and switch of the rules, loaded from YAML.

Typed and strict (unknown keys are errors) so a marketer's typo fails loudly
at start-up, naming the field, instead of quietly falling back to a default.
"""

from __future__ import annotations

import functools
import itertools
from datetime import time, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from lifecycle.clv import ClvModel
from lifecycle.flows import yaml12
from lifecycle.flows.model import FlowDef, SegmentDef
from lifecycle.flows.parse import FlowError, Language, parse_language
from lifecycle.recommend import RecommendationRules
from lifecycle.units import Duration, Percent, equal_arms
from schemas.events import TimeZone
from schemas.records import Campaign

__all__ = [
    "CAMPAIGN_DEFAULTS",
    "TIMED_CAMPAIGNS",
    "CampaignRule",
    "Derived",
    "Playbook",
    "PlaybookError",
    "builtin_language",
    "default_playbook",
    "error_path",
    "load_playbook",
    "parse_playbook",
    "problems",
]

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmAtLeast(_Strict):
    r: int = Field(default=4, ge=1, le=5)
    f: int = Field(default=4, ge=1, le=5)
    m: int = Field(default=4, ge=1, le=5)


class LoyalRule(_Strict):
    """Loyal: ``min_orders`` purchases within ``within``, or every RFM score at least ``rfm``."""

    min_orders: int = Field(default=4, ge=2)
    within: Duration = timedelta(days=365)
    rfm: RfmAtLeast | None = RfmAtLeast()


class AtRiskRule(_Strict):
    """A slide-back after a time without purchases, stretched for slow-buying customers."""

    enabled: bool = True
    after: Duration = timedelta(days=60)
    gap_multiple: float = Field(default=2.0, ge=0)


class ChurnRule(_Strict):
    enabled: bool = True
    after: Duration = timedelta(days=120)
    min_at_risk: Duration = timedelta(days=7)
    """Churn never comes sooner than this after the customer went at risk."""


class StageRules(_Strict):
    repeat_min_orders: int = Field(default=2, ge=2)
    loyal: LoyalRule = LoyalRule()
    at_risk: AtRiskRule = AtRiskRule()
    churned: ChurnRule = ChurnRule()
    gap_purchases: int = Field(default=10, ge=2, le=1000)
    """The typical inter-purchase gap is the median gap between the last N purchases."""

    @model_validator(mode="after")
    def _churn_after_at_risk(self) -> StageRules:
        if self.churned.after <= self.at_risk.after:
            msg = "churned.after must be longer than at_risk.after"
            raise ValueError(msg)
        return self

    @property
    def purchases_kept(self) -> int:
        """Purchase times a record keeps: enough for the loyal count and the gap median."""
        return max(self.loyal.min_orders, self.gap_purchases)


def _ordered(values: list[float], *, descending: bool = False, unit: str = "") -> list[float]:
    """Four breakpoints, each past the one before: larger, or smaller if ``descending``."""
    out_of_order = (b >= a if descending else b <= a for a, b in itertools.pairwise(values))
    if len(values) != 4 or any(out_of_order):
        msg = f"needs 4 strictly {'descending' if descending else 'ascending'} breakpoints{unit}"
        raise ValueError(msg)
    return values


class RfmBreakpoints(_Strict):
    recency_days: list[float] = [240, 120, 60, 30]
    frequency: list[float] = [2, 3, 5, 8]
    monetary: list[float] = [100, 250, 500, 1000]

    @field_validator("frequency", "monetary")
    @classmethod
    def _check_ascending(cls, values: list[float]) -> list[float]:
        return _ordered(values)

    @field_validator("recency_days")
    @classmethod
    def _check_descending(cls, values: list[float]) -> list[float]:
        return _ordered(values, descending=True, unit=" (days, the longest first)")


class ClvTiers(_Strict):
    """Lower bounds of customer value (net revenue) for the high and mid tiers."""

    high: Decimal = Field(default=Decimal(1000), ge=0)
    mid: Decimal = Field(default=Decimal(250), ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ClvTiers:
        if self.mid > self.high:
            msg = "mid must not be above high"
            raise ValueError(msg)
        return self

    def tier(self, value: Decimal) -> Literal["high", "mid", "low"]:
        if value >= self.high:
            return "high"
        return "mid" if value >= self.mid else "low"


class Scores(_Strict):
    rfm: RfmBreakpoints = RfmBreakpoints()
    clv_tiers: ClvTiers = ClvTiers()
    clv_model: ClvModel = ClvModel()


class Dedup(_Strict):
    event_ids_per_customer: int = Field(default=200, ge=1, le=100_000)


class QuietHours(_Strict):
    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(8, 0)
    default_timezone: TimeZone | None = None
    """The zone of a customer who gave none (a shop selling in one country names its
    own); without it, such a customer has no quiet hours."""


class FrequencyCap(_Strict):
    """At most ``count`` marketing messages whose send times fall within ``within``."""

    count: int = Field(ge=0)
    within: Duration


class Policies(_Strict):
    default_holdout: Share = 0.10
    quiet_hours: QuietHours = QuietHours()
    frequency_caps: list[FrequencyCap] = Field(
        default_factory=lambda: [
            FrequencyCap(count=1, within=timedelta(hours=24)),
            FrequencyCap(count=3, within=timedelta(days=7)),
        ]
    )

    @property
    def longest_cap(self) -> timedelta:
        return max((cap.within for cap in self.frequency_caps), default=timedelta(0))


class CampaignRule(_Strict):
    """One campaign's switch, channel, policy and parameters.

    ``delay`` is the wait of a timed campaign (abandonment, review, nudge);
    the offer fields are read only by the campaigns that make offers.
    """

    enabled: bool = True
    channel: Literal["email", "sms", "push"] = "email"
    transactional: bool = False
    priority: int = Field(default=50, ge=0)
    holdout: Share | None = None
    variants: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: {"A": 1.0})
    delay: Duration | None = None
    discount_percent: Percent | None = None
    discount_by_tier: dict[Literal["high", "mid", "low"], Percent] | None = None
    survey: bool = False
    perks: list[str] = Field(default_factory=list)
    max_products: int = Field(default=10, ge=1, le=100)
    attribution_window: Duration = timedelta(days=7)
    """How long after a marketing decision a conversion is credited to it."""
    goal: Literal["purchase", "checkout"] = "purchase"
    """What counts as a conversion: a purchase, or a checkout started (or a purchase)."""

    @field_validator("variants", mode="before")
    @classmethod
    def _named_arms(cls, variants: Any) -> Any:
        """``variants: [a, b]`` names arms of equal weight."""
        return equal_arms(variants) if isinstance(variants, list) else variants

    @field_validator("variants")
    @classmethod
    def _some_variant(cls, variants: dict[str, float]) -> dict[str, float]:
        if not variants:
            msg = "needs at least one variant"
            raise ValueError(msg)
        return variants


TIMED_CAMPAIGNS = (
    Campaign.BROWSE_ABANDONMENT,
    Campaign.CART_ABANDONMENT,
    Campaign.REVIEW_REQUEST,
    Campaign.SECOND_PURCHASE_NUDGE,
)

CAMPAIGN_DEFAULTS: dict[Campaign, dict[str, Any]] = {
    Campaign.WELCOME: {"priority": 70},
    Campaign.BROWSE_ABANDONMENT: {"priority": 55, "delay": timedelta(hours=2)},
    Campaign.CART_ABANDONMENT: {"priority": 80, "delay": timedelta(hours=1)},
    Campaign.ORDER_THANK_YOU: {"priority": 100, "transactional": True},
    Campaign.REVIEW_REQUEST: {"priority": 30, "delay": timedelta(days=7)},
    Campaign.SECOND_PURCHASE_NUDGE: {"priority": 40, "delay": timedelta(days=30)},
    Campaign.CHURN_PREVENTION: {"priority": 60, "survey": True, "discount_percent": Decimal(5)},
    Campaign.WIN_BACK: {
        "priority": 60,
        "discount_by_tier": {"high": Decimal(20), "mid": Decimal(15), "low": Decimal(10)},
    },
    Campaign.WELCOME_BACK: {"priority": 50},
    Campaign.LOYALTY_REWARD: {"priority": 50, "perks": ["free_shipping", "points"]},
    Campaign.ADVOCATE_REFERRAL: {"priority": 45},
}
"""What a campaign is when the playbook does not say: the campaigns table of docs/campaigns.md."""


def _parsed(section: Any, kind: type) -> bool:
    """Whether a section holds models already (a Playbook built in code), not YAML data.

    An empty section is data: ``flows: {}`` keeps the default playbook's flows."""
    return (
        isinstance(section, dict)
        and bool(section)
        and all(isinstance(v, kind) for v in section.values())
    )


@functools.cache
def builtin_language() -> Language:
    """The segments and flows of the packaged default playbook, parsed once."""
    text = resources.files("lifecycle").joinpath("default_playbook.yaml").read_text("utf-8")
    data = yaml12.load(text) or {}
    return parse_language(data.get("segments"), data.get("flows"))


class Derived:
    """A value computed from a playbook's fields once (its compiled flows), kept on it.

    Equal to any other ``Derived``: it follows from the fields, so two playbooks
    are equal when their fields are, whatever either has computed so far."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Derived)

    __hash__ = None  # type: ignore[assignment]


class Playbook(_Strict):
    """The rules of one shop. A file only needs what differs from the defaults:
    each campaign's fields are laid over that campaign's default fields."""

    _derived: Derived = PrivateAttr(default_factory=Derived)

    stages: StageRules = StageRules()
    scores: Scores = Scores()
    dedup: Dedup = Dedup()
    policies: Policies = Policies()
    recommendations: RecommendationRules = RecommendationRules()
    campaigns: dict[Campaign, CampaignRule] = Field(
        default_factory=lambda: {
            c: CampaignRule.model_validate(d) for c, d in CAMPAIGN_DEFAULTS.items()
        }
    )
    segments: dict[str, SegmentDef] = Field(default_factory=lambda: dict(builtin_language()[0]))
    """Named conditions over the customer record: the default playbook's, then the shop's."""
    flows: dict[str, FlowDef] = Field(default_factory=lambda: dict(builtin_language()[1]))
    """The default playbook's flows, then the shop's (docs/flows.md)."""

    @property
    def derived(self) -> Derived:
        """The cache of what is computed from this playbook's fields (its compiled flows,
        ``lifecycle.flows.program.program``). A copy shares it, so a reader checks
        the fields it was computed from before using it. Read from the private
        attributes' dict itself: every cause asks, and the model's attribute lookup
        for a private attribute costs more than the rest of the check."""
        derived: Derived = self.__pydantic_private__["_derived"]  # type: ignore[index]
        return derived

    @model_validator(mode="before")
    @classmethod
    def _language(cls, given: Any) -> Any:
        """Parse the YAML of ``segments`` and ``flows`` over the default playbook's."""
        if not isinstance(given, dict) or not ("segments" in given or "flows" in given):
            return given
        segments, flows = given.get("segments"), given.get("flows")
        if _parsed(segments, SegmentDef) and _parsed(flows, FlowDef):
            return given
        if _parsed(segments, SegmentDef) or _parsed(flows, FlowDef):
            base_segments, base_flows = builtin_language()
            return {
                **given,
                "segments": segments if segments is not None else dict(base_segments),
                "flows": flows if flows is not None else dict(base_flows),
            }
        composed = parse_language(segments, flows, builtin_language())
        return {**given, "segments": composed[0], "flows": composed[1]}

    @field_validator("campaigns", mode="before")
    @classmethod
    def _over_defaults(cls, given: Any) -> Any:
        if not isinstance(given, dict):
            return given
        merged: dict[Any, Any] = {c.value: dict(d) for c, d in CAMPAIGN_DEFAULTS.items()}
        for name, fields in given.items():
            base = merged.get(str(name), {})
            merged[name] = {**base, **fields} if isinstance(fields, dict) else fields
        return merged

    @model_validator(mode="after")
    def _consistent_campaigns(self) -> Playbook:
        for name, rule in self.campaigns.items():
            if rule.transactional and rule.holdout:
                msg = f"campaign {name.value} is transactional and cannot have a holdout"
                raise ValueError(msg)
            if name in TIMED_CAMPAIGNS and rule.delay is None:
                msg = f"campaign {name.value} needs a delay"
                raise ValueError(msg)
        return self

    def campaign(self, campaign: Campaign) -> CampaignRule | None:
        """The rule of an enabled campaign, or None when it is off or absent."""
        rule = self.campaigns.get(campaign)
        return rule if rule is not None and rule.enabled else None

    def holdout_share(self, rule: CampaignRule) -> float:
        if rule.transactional:
            return 0.0
        return self.policies.default_holdout if rule.holdout is None else rule.holdout


class PlaybookError(ValueError):
    """A playbook that cannot be used; the message names the file and the field."""


def error_path(loc: tuple[int | str, ...]) -> str:
    """``("flows", "x", "steps", 2)`` as ``flows.x.steps[2]``: how an error names its place."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _problem(error: Any) -> tuple[tuple[int | str, ...], str]:
    """Where a validation error is, and what is wrong there, in the playbook's words."""
    loc = tuple(error["loc"])
    if error["type"] == "missing":
        return loc, "required"
    if error["type"] == "extra_forbidden" and loc:  # as the flows' own keys say it
        return loc[:-1], f"unknown key {str(loc[-1])!r}"
    return loc, str(error["msg"]).removeprefix("Value error, ")


def problems(exc: ValidationError) -> list[str]:
    """Each of a validation's problems as ``PATH: PROBLEM``, one line, without pydantic's
    type names and links: what a user can act on."""
    lines = []
    for error in exc.errors(include_url=False):
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FlowError):  # already names its own path
            lines.append(str(cause))
            continue
        where, problem = _problem(error)
        lines.append(f"{error_path(where) or '(top level)'}: {problem}")
    return lines


def _field_errors(source: str, exc: ValidationError) -> PlaybookError:
    """One line per problem; the first one on the message's first line."""
    return PlaybookError(f"invalid playbook {source}: " + "\n".join(problems(exc)))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint on one line, with the line and column it is at (1-based),
    and what it was reading when it started, for an editor to jump to."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f": {exc}"
    mark = exc.problem_mark or exc.context_mark
    where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
    problem = exc.problem or exc.context or "not YAML"
    context = ""
    if exc.context and exc.problem and exc.context_mark is not None:
        start = exc.context_mark
        context = f" ({exc.context}, from line {start.line + 1}, column {start.column + 1})"
    return f"{where}: {problem}{context}"


def parse_playbook(text: str, source: str = "<string>") -> Playbook:
    try:
        data = yaml12.load(text)
    except yaml.YAMLError as exc:
        msg = f"invalid playbook {source}: not valid YAML{_yaml_problem(exc)}"
        raise PlaybookError(msg) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = f"invalid playbook {source}: the top level must be a mapping"
        raise PlaybookError(msg)
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        raise _field_errors(source, exc) from None


def load_playbook(path: Path | None = None) -> Playbook:
    """The playbook at ``path``, or the built-in default when None."""
    if path is None:
        return default_playbook()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read playbook {path}: {exc.strerror}"
        raise PlaybookError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"invalid playbook {path}: not UTF-8 text (byte {exc.start})"
        raise PlaybookError(msg) from exc
    return parse_playbook(text, str(path))


def default_playbook() -> Playbook:
    text = resources.files("lifecycle").joinpath("default_playbook.yaml").read_text("utf-8")
    return parse_playbook(text, "default_playbook.yaml")
