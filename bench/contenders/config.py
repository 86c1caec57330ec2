"""A contender's run configuration, apart from the Faust app they mostly share.

The quix-streams contenders run in an interpreter of their own
(``.venv-quix``, without Faust), so the configuration they read lives where
importing it needs nothing but orjson.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Contender"]


@dataclass(frozen=True)
class Contender:
    """One contender's run: where to read, where to write, under which group."""

    broker: str
    topics: list[str]
    group: str
    partitions: int
    out_topic: str
    web_port: int
    data_dir: str
    variant: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)

    def argv(self) -> str:
        return orjson.dumps(self.__dict__).decode()

    @classmethod
    def from_argv(cls) -> Contender:
        return cls(**orjson.loads(sys.argv[1]))
