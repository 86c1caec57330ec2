"""The reporting period [start, end): either side open when not given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Period"]


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime | None = None
    end: datetime | None = None

    def contains(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def closed_by(self, closes_at: datetime) -> bool:
        """A window counts only once it closed before the period's end: no partial windows."""
        return self.end is None or closes_at < self.end

    def before_start(self, at: datetime) -> bool:
        return self.start is not None and at < self.start

    def as_dict(self) -> dict[str, str | None]:
        return {
            "from": None if self.start is None else self.start.isoformat(),
            "to": None if self.end is None else self.end.isoformat(),
        }
