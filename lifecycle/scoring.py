"""Customer scores: RFM and value, as pure functions of the record and a time."""

from __future__ import annotations

import functools
from bisect import bisect_right
from datetime import datetime, timedelta
from decimal import Decimal

from lifecycle.clv import Prediction, predict
from lifecycle.playbook import RfmBreakpoints, Scores
from lifecycle.state import CustomerState, trusted
from lifecycle.timers import typical_gap
from lifecycle.units import days_up
from schemas.records import Rfm, Snapshot

__all__ = ["ScoresAt", "rfm", "rfm_segment", "snapshot"]


def _score(value: float, ascending: list[float]) -> int:
    return 1 + bisect_right(ascending, value)


_RFM_OF: dict[tuple[int, int, int], Rfm] = {}
"""Each (r, f, m) met so far, made once: an ``Rfm`` is frozen, so every step and
snapshot with the same scores shares one (a few hundred at most)."""


def _recency_score(days: float, limits: list[float]) -> int:
    """RFM's recency score ``days`` after the last order: one more per breakpoint not
    passed yet."""
    recency = 1
    for limit in limits:  # a loop, not sum() of a generator: every step
        if days <= limit:
            recency += 1
    return recency


def rfm(state: CustomerState, now: datetime, breakpoints: RfmBreakpoints) -> Rfm | None:
    """RFM at ``now``; None before the first order, when recency has no meaning."""
    if state.last_order_at is None:
        return None
    days = (now - state.last_order_at).total_seconds() / 86400
    key = (
        _recency_score(days, breakpoints.recency_days),
        _score(state.orders, breakpoints.frequency),
        _score(float(state.revenue), breakpoints.monetary),
    )
    found = _RFM_OF.get(key)
    if found is None:
        found = _RFM_OF[key] = trusted(Rfm, r=key[0], f=key[1], m=key[2])
    return found


def snapshot(state: CustomerState, now: datetime, scores: Scores) -> Snapshot:
    return ScoresAt(state, now, scores).snapshot()


_Inputs = tuple[datetime | None, datetime | None, int, int, Decimal]
"""The fields of a record that its RFM and its predictions derive from (besides the time)."""


class ScoresAt:
    """One record's RFM and predictions as of ``now``, each computed once.

    One step of the core (an event, or one due timer) asks for them up to five
    times, all at the step's time: the snapshot of each transition, the segment
    and predictions in each contact's payload, the loyal rule, and the
    predictions stored in the record. Each is computed on its first use and
    kept while the record's order fields (all they derive from) stay as they
    were, so a purchase or a refund made before a later use is not missed.
    The step owns this object: nothing is kept across steps or records.
    """

    __slots__ = ("_prediction", "_rfm", "now", "scores", "state")

    def __init__(self, state: CustomerState, now: datetime, scores: Scores) -> None:
        self.state = state
        self.now = now
        self.scores = scores
        self._rfm: tuple[_Inputs, Rfm | None] | None = None
        self._prediction: tuple[_Inputs, Prediction | None] | None = None

    def _inputs(self) -> _Inputs:
        state = self.state
        return (
            state.first_order_at,
            state.last_order_at,
            state.purchase_days,
            state.orders,
            state.revenue,
        )

    def rfm(self) -> Rfm | None:
        inputs = self._inputs()
        if self._rfm is None or self._rfm[0] != inputs:
            self._rfm = (inputs, rfm(self.state, self.now, self.scores.rfm))
        return self._rfm[1]

    def prediction(self) -> Prediction | None:
        inputs = self._inputs()
        if self._prediction is None or self._prediction[0] != inputs:
            self._prediction = (inputs, predict(self.state, self.now, self.scores.clv_model))
        return self._prediction[1]

    def rfm_segment(self) -> str | None:
        """The RFM segment's name (``rfm_segment``) of this step's RFM."""
        return rfm_segment(self.rfm())

    def at(self, now: datetime) -> ScoresAt:
        """The same record's scores at another time (a segment's turn, looked for ahead)."""
        return ScoresAt(self.state, now, self.scores)

    def recency_falls(self) -> list[tuple[datetime, int, str | None]]:
        """When, after ``now``, RFM's recency score falls (just past each breakpoint, as it
        counts ``days <= limit``) while the orders stay as they are: each instant with
        the score and the RFM segment from then on."""
        scores = self.rfm()
        last = self.state.last_order_at
        if scores is None or last is None:
            return []
        limits = self.scores.rfm.recency_days
        falls = []
        for offset in _recency_offsets(tuple(limits)):
            at = last + offset
            if at > self.now:
                r = _recency_score((at - last).total_seconds() / 86400, limits)
                falls.append((at, r, _SEGMENT_OF.get((r, scores.f))))
        return falls

    def known_prediction(self) -> Prediction | None:
        """The prediction if this step has computed it for the record as it is now;
        None when nothing asked for it (or there is none), so storing it costs nothing."""
        cached = self._prediction
        if cached is None or cached[0] != self._inputs():
            return None
        return cached[1]

    def snapshot(self) -> Snapshot:
        state = self.state
        prediction = self.prediction()
        gap = typical_gap(state)
        return trusted(
            Snapshot,
            orders=state.orders,
            revenue=state.revenue,
            clv=state.revenue,
            aov=state.average_order_value,
            rfm=self.rfm(),
            typical_gap_days=None if gap is None else round(gap.total_seconds() / 86400, 2),
            p_alive=None if prediction is None else prediction.p_alive,
            predicted_clv=None if prediction is None else prediction.predicted_clv,
        )


_SEGMENTS: tuple[tuple[range, range, str], ...] = (
    (range(1, 3), range(1, 3), "hibernating"),
    (range(1, 3), range(3, 5), "at_risk"),
    (range(1, 3), range(5, 6), "cant_lose_them"),
    (range(3, 4), range(1, 3), "about_to_sleep"),
    (range(3, 4), range(3, 4), "need_attention"),
    (range(3, 5), range(4, 6), "loyal_customers"),
    (range(4, 5), range(1, 2), "promising"),
    (range(5, 6), range(1, 2), "new_customers"),
    (range(4, 6), range(2, 4), "potential_loyalists"),
    (range(5, 6), range(4, 6), "champions"),
)
"""The usual recency x frequency grid of RFM segments: every (r, f) has one name."""


@functools.lru_cache(maxsize=8)
def _recency_offsets(limits: tuple[float, ...]) -> tuple[timedelta, ...]:
    """Each breakpoint's distance from the last order, the longest last, rounded up to
    the microsecond, plus one: the first instant the score no longer counts it."""
    return tuple(days_up(Decimal(str(limit))) + _TICK for limit in sorted(limits))


_TICK = timedelta(microseconds=1)


_SEGMENT_OF: dict[tuple[int, int], str] = {}
"""The grid as a table: the segment of each (r, f), the first of the grid's rows that
holds it, looked up instead of searched on every decision."""
for _recency, _frequency, _name in _SEGMENTS:
    for _r in _recency:
        for _f in _frequency:
            _SEGMENT_OF.setdefault((_r, _f), _name)


def rfm_segment(scores: Rfm | None) -> str | None:
    """The segment name a mail template or a CRM list keys on; None before any order."""
    if scores is None:
        return None
    name = _SEGMENT_OF.get((scores.r, scores.f))
    if name is None:
        msg = f"no segment for {scores}"
        raise AssertionError(msg)
    return name
