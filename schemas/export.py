"""JSON Schema export: one file per message type, for producers in any language."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from schemas.codec import dumps
from schemas.events import EVENT_TYPES, Event
from schemas.records import Attribution, DeadLetter, Transition, Trigger

__all__ = ["export_schemas"]

_OUTBOUND: dict[str, type[BaseModel]] = {
    "transition": Transition,
    "trigger": Trigger,
    "deadletter": DeadLetter,
    "attribution": Attribution,
}


def export_schemas(directory: Path) -> list[Path]:
    """Write ``<type>.schema.json`` for each inbound event type and outbound record."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    documents = {name: model.model_json_schema() for name, model in EVENT_TYPES.items()}
    documents["event"] = TypeAdapter(Event).json_schema()
    documents.update({name: model.model_json_schema() for name, model in _OUTBOUND.items()})
    for name, schema in sorted(documents.items()):
        path = directory / f"{name}.schema.json"
        document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        path.write_bytes(dumps(document) + b"\n")
        written.append(path)
    return written
