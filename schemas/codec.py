"""The one JSON module: every byte the engine reads or writes goes through here.

orjson for plain structures, pydantic-core for models (both Rust, both fast);
kept in one place so options and formats (UTC ``Z`` timestamps, decimals as
strings) cannot drift between the backtest, the agents and the tools.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

__all__ = ["dumps", "encode_model", "loads", "to_jsonable"]


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    msg = f"cannot encode {type(value).__name__} as JSON"
    raise TypeError(msg)


def dumps(value: Any) -> bytes:
    """Encode plain data (dicts, lists, models nested inside) as compact UTF-8 JSON."""
    return orjson.dumps(value, default=_default)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def encode_model(model: BaseModel) -> bytes:
    """Encode one model with pydantic-core's serializer (no intermediate dict)."""
    return model.__pydantic_serializer__.to_json(model)


def to_jsonable(model: BaseModel) -> dict[str, Any]:
    """The model as the plain dict its JSON encoding would parse back to."""
    return model.model_dump(mode="json")
