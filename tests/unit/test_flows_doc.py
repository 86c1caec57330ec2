"""docs/flows.md, the language's reference, against the parser it describes.

Every operator, record path, trigger kind, step kind, run-control key, send
field, channel, include and counter reason the code accepts must be named
there (backticked), so a word added to the language is documented with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from lifecycle.flows.counts import EXIT_REASONS, SKIP_REASONS
from lifecycle.flows.model import (
    INCLUDES,
    OPERATORS,
    Branch,
    DateTrigger,
    EventMatch,
    FlowDef,
    SegmentEnter,
    SendSpec,
    StageEnter,
    Wait,
)
from lifecycle.flows.paths import RECORD_PATHS
from schemas.records import Channel

DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"

WORDS = {
    "operator": OPERATORS,
    "record path": tuple(RECORD_PATHS),
    "trigger kind": ("event", "stage_enter", "segment_enter", "date", "at"),
    "step kind": ("wait", "send", "branch", "if", "then", "else"),
    "flow key": tuple(f for f in FlowDef.model_fields if f != "builtin"),
    "send field": tuple(SendSpec.model_fields),
    "channel": get_args(Channel),
    "include": INCLUDES,
    "exit reason": EXIT_REASONS,
    "skip reason": SKIP_REASONS,
}


def backticked(text: str) -> set[str]:
    """Every word the text names in code, outside fenced blocks: a whole span, and each
    of its words."""
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    spans = re.findall(r"`([^`]+)`", prose)
    return set(spans) | {w for s in spans for w in re.findall(r"[A-Za-z_][\w.]*", s)}


@pytest.mark.parametrize("kind", WORDS)
def test_every_word_of_the_language_is_documented(kind: str) -> None:
    named = backticked(DOC.read_text(encoding="utf-8"))
    assert [w for w in WORDS[kind] if w not in named] == []


def test_the_extensions_beyond_the_contract_are_marked() -> None:
    text = DOC.read_text(encoding="utf-8")
    for word in ("cart_items", "cart_value", "signed_up", "remaining", "referral_code"):
        line = next(line for line in text.splitlines() if f"`{word}`" in line)
        assert "extension" in line.lower(), word


def test_the_lists_above_are_the_models() -> None:
    """The trigger and step words are the models' own fields (``if_`` is ``if``; ``send``
    and ``branch`` are the keys that hold a ``SendSpec`` and a ``Branch``)."""
    triggers = {*EventMatch.model_fields, *StageEnter.model_fields, *SegmentEnter.model_fields}
    triggers |= set(DateTrigger.model_fields)
    assert triggers - {"where"} == set(WORDS["trigger kind"])
    steps = {*Wait.model_fields, *Branch.model_fields, "send", "branch"}
    assert {s.rstrip("_") for s in steps} == set(WORDS["step kind"])
