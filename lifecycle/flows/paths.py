"""The paths a condition may name: record paths (the customer) and event paths (``where``).

Each path has a kind, which says what its values compare with: ``number``
(compared as Decimal), ``text``, ``bool``, ``any`` (traits and properties:
whatever scalar was sent), or a closed set of names (``stage``, ``clv_tier``,
``action``...). The parser checks literals against the kind; the evaluator
(``lifecycle.flows.conditions``) reads the values.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from schemas.events import EVENT_TYPES, OrderItem
from schemas.records import Stage

__all__ = [
    "EVENT_PATHS",
    "RECORD_PATHS",
    "RFM_SEGMENTS",
    "PathKind",
    "event_path",
    "record_path",
]

RFM_SEGMENTS = (
    "hibernating",
    "at_risk",
    "cant_lose_them",
    "about_to_sleep",
    "need_attention",
    "loyal_customers",
    "promising",
    "new_customers",
    "potential_loyalists",
    "champions",
)
"""``lifecycle.scoring.rfm_segment``'s names (not imported: scoring imports the playbook)."""


@dataclass(frozen=True, slots=True)
class PathKind:
    """What a path's values are: ``number``, ``text``, ``bool``, ``any`` or ``names``."""

    kind: Literal["number", "text", "bool", "any", "names"]
    names: tuple[str, ...] = ()
    through_list: bool = False
    """Whether the path goes through a list (``items.category``): any element may match."""


NUMBER = PathKind("number")
TEXT = PathKind("text")
BOOL = PathKind("bool")
ANY = PathKind("any")

RECORD_PATHS: dict[str, PathKind] = {
    "stage": PathKind("names", tuple(s.value for s in Stage)),
    "orders": NUMBER,
    "revenue": NUMBER,
    "clv": NUMBER,
    "aov": NUMBER,
    "clv_tier": PathKind("names", ("high", "mid", "low")),
    "rfm.r": NUMBER,
    "rfm.f": NUMBER,
    "rfm.m": NUMBER,
    "rfm_segment": PathKind("names", RFM_SEGMENTS),
    "p_alive": NUMBER,
    "predicted_clv": NUMBER,
    "days_since_last_order": NUMBER,
    "consent": BOOL,
    "country": TEXT,
    "locale": TEXT,
    # Beyond the contract's list: what the built-in flows need.
    "cart_items": NUMBER,
    "cart_value": NUMBER,
    "signed_up": BOOL,
}
"""The record paths (docs/flows.md), plus ``traits.X`` (any scalar; ``record_path``)."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_TRAIT = re.compile(rf"^traits\.{_NAME}$")
_PROPERTY = re.compile(rf"^properties\.{_NAME}$")


def record_path(path: str) -> PathKind | None:
    """The kind of a record path, or None when there is no such path."""
    if _TRAIT.match(path):
        return ANY
    return RECORD_PATHS.get(path)


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...] | None`` as ``X``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else Any
        else:
            return annotation


def _kind(annotation: Any, *, through_list: bool = False) -> PathKind:
    annotation = _unwrap(annotation)
    if get_origin(annotation) is Literal:
        names = tuple(str(a) for a in get_args(annotation))
        return PathKind("names", names, through_list)
    if annotation is bool:
        return PathKind("bool", through_list=through_list)
    if annotation in (int, float, Decimal):
        return PathKind("number", through_list=through_list)
    if annotation is str:
        return PathKind("text", through_list=through_list)
    return PathKind("any", through_list=through_list)


def _fields(model: type[BaseModel]) -> dict[str, PathKind]:
    paths: dict[str, PathKind] = {}
    for name, field in model.model_fields.items():
        if name == "type":
            continue
        if name == "items":
            for item, item_field in OrderItem.model_fields.items():
                paths[f"items.{item}"] = _kind(item_field.annotation, through_list=True)
            continue
        paths[name] = _kind(field.annotation)
    return paths


def _event_paths() -> dict[str, dict[str, PathKind]]:
    paths = {name: _fields(model) for name, model in EVENT_TYPES.items()}
    if "custom" not in paths:  # the inbound branch adds the custom event type to schemas.events
        paths["custom"] = {
            "event_id": TEXT,
            "occurred_at": TEXT,
            "customer_id": TEXT,
            "anonymous_id": TEXT,
            "schema_version": NUMBER,
            "name": TEXT,
        }
    for fields in paths.values():
        fields.pop("properties", None)
        fields.pop("traits", None)
    # Beyond the contract's fields: what is left of the order after a refund.
    paths["refund"]["remaining"] = NUMBER
    return paths


EVENT_PATHS: dict[str, dict[str, PathKind]] = _event_paths()
"""Per event type, its fields (``items.X`` through the purchase's lines); ``properties.X`` too."""


def event_path(event_type: str, path: str) -> PathKind | None:
    """The kind of a path of an event type, or None when that event has no such field."""
    if _PROPERTY.match(path):
        return ANY
    if event_type in ("signup", "identify") and _TRAIT.match(path):
        return ANY
    return EVENT_PATHS[event_type].get(path)
