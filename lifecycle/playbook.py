"""The playbook: every threshold and switch of the rules, loaded from YAML.

Typed and strict (unknown keys are errors) so a marketer's typo fails loudly
at start-up, naming the field, instead of quietly falling back to a default.
"""

from __future__ import annotations

import itertools
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.records import Campaign

__all__ = [
    "CampaignRule",
    "Playbook",
    "PlaybookError",
    "default_playbook",
    "load_playbook",
    "parse_playbook",
]

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageRules(_Strict):
    repeat_min_orders: int = Field(default=2, ge=2)


def _ascending(values: list[float]) -> list[float]:
    if len(values) != 4 or any(b <= a for a, b in itertools.pairwise(values)):
        msg = "needs 4 strictly ascending breakpoints"
        raise ValueError(msg)
    return values


class RfmBreakpoints(_Strict):
    recency_days: list[float] = [240, 120, 60, 30]
    frequency: list[float] = [2, 3, 5, 8]
    monetary: list[float] = [100, 250, 500, 1000]

    @field_validator("frequency", "monetary")
    @classmethod
    def _check_ascending(cls, values: list[float]) -> list[float]:
        return _ascending(values)

    @field_validator("recency_days")
    @classmethod
    def _check_descending(cls, values: list[float]) -> list[float]:
        _ascending(list(reversed(values)))
        return values


class Scores(_Strict):
    rfm: RfmBreakpoints = RfmBreakpoints()


class Dedup(_Strict):
    event_ids_per_customer: int = Field(default=200, ge=1, le=100_000)


class QuietHours(_Strict):
    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(8, 0)


class Policies(_Strict):
    default_holdout: Share = 0.10
    quiet_hours: QuietHours = QuietHours()


class CampaignRule(_Strict):
    enabled: bool = True
    channel: Literal["email", "sms", "push"] = "email"
    transactional: bool = False
    priority: int = Field(default=50, ge=0)
    holdout: Share | None = None
    variants: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: {"A": 1.0})

    @field_validator("variants")
    @classmethod
    def _some_variant(cls, variants: dict[str, float]) -> dict[str, float]:
        if not variants:
            msg = "needs at least one variant"
            raise ValueError(msg)
        return variants


class Playbook(_Strict):
    stages: StageRules = StageRules()
    scores: Scores = Scores()
    dedup: Dedup = Dedup()
    policies: Policies = Policies()
    campaigns: dict[Campaign, CampaignRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _transactional_not_held_out(self) -> Playbook:
        for name, rule in self.campaigns.items():
            if rule.transactional and rule.holdout:
                msg = f"campaign {name.value} is transactional and cannot have a holdout"
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


def _field_errors(source: str, exc: ValidationError) -> PlaybookError:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return PlaybookError(f"invalid playbook {source}:\n" + "\n".join(lines))


def parse_playbook(text: str, source: str = "<string>") -> Playbook:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"invalid playbook {source}: not valid YAML: {exc}"
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
    return parse_playbook(text, str(path))


def default_playbook() -> Playbook:
    text = resources.files("lifecycle").joinpath("default_playbook.yaml").read_text("utf-8")
    return parse_playbook(text, "default_playbook.yaml")
