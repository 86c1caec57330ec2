"""RFM segment names: every recency x frequency cell has exactly one."""

from __future__ import annotations

import pytest

from lifecycle.flows.paths import RFM_SEGMENTS
from lifecycle.scoring import rfm_segment
from schemas.records import Rfm


def test_every_cell_has_one_segment() -> None:
    names = {rfm_segment(Rfm(r=r, f=f, m=1)) for r in range(1, 6) for f in range(1, 6)}
    assert names == {
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
    }
    assert set(RFM_SEGMENTS) == names  # the names flows' ``rfm_segment`` path accepts


@pytest.mark.parametrize(
    ("r", "f", "name"),
    [
        (5, 5, "champions"),
        (5, 1, "new_customers"),
        (1, 5, "cant_lose_them"),
        (1, 1, "hibernating"),
        (3, 3, "need_attention"),
        (4, 2, "potential_loyalists"),
    ],
)
def test_named_cells(r: int, f: int, name: str) -> None:
    assert rfm_segment(Rfm(r=r, f=f, m=3)) == name


def test_no_orders_no_segment() -> None:
    assert rfm_segment(None) is None
