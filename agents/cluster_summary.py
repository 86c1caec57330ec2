"""The dashboard's figures over every worker: each worker's own summary side by side,
and their sum, from the answers the serving worker gathered (``agents/peers.py``).

Pure: what the workers said in, one JSON-ready dict out. Counters are per
process, so the cluster's figures are the sums of the workers'. Lag is not:
every worker measures the whole group's lag from the broker, so a partition's
lag is the largest any answering worker measured (a worker whose last
measurement failed still shows its older, larger figure rather than hiding
lag). A worker that did not answer is listed with the reason, never left out,
and the totals say how many answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.metrics import lift_of
from lifecycle.flows.tally import FlowCounts

__all__ = ["Answer", "lag_by_topic", "merge"]

WORST = 3
"""Partitions named per topic in the compact lag table."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One worker's ``/dashboard.json``, or why it is missing."""

    worker: str
    """The worker's advertised web address (Faust's canonical URL), e.g. ``http://h:6066``."""
    summary: dict[str, Any] | None
    error: str | None = None


def merge(answers: Sequence[Answer], served_by: str, at: float) -> dict[str, Any]:
    """Every worker's figures, and their sum over the workers that answered."""
    summaries = [a.summary for a in answers if a.summary is not None]
    lag = _group_lag(summaries)
    return {
        "served_by": served_by,
        "at": at,
        "expected": len(answers),
        "answered": len(summaries),
        "workers": [_worker_row(a) for a in answers],
        "stages": _sum_maps(s["stages"] for s in summaries),
        "transitions": sum(s["transitions"] for s in summaries),
        "events_accepted": sum(s["events_accepted"] for s in summaries),
        "timers_pending": sum(s["timers_pending"] for s in summaries),
        "dead_letters": _sum_maps(s["dead_letters"] for s in summaries),
        "campaigns": _sum_campaigns(s["campaigns"] for s in summaries),
        "lift": _sum_lift(s["lift"] for s in summaries),
        # A worker of an older version has no flow figures: it adds none.
        "flows": FlowCounts.of(s.get("flows", {}) for s in summaries).as_dict(),
        "flow_lift": _sum_lift(s.get("flow_lift", {}) for s in summaries),
        "lag_total": sum(row["lag"] for row in lag),
        "lag_topics": lag_by_topic(lag),
    }


def _worker_row(answer: Answer) -> dict[str, Any]:
    row: dict[str, Any] = {"worker": answer.worker, "ok": answer.summary is not None}
    if answer.summary is None:
        return {**row, "error": answer.error or "no answer"}
    s = answer.summary
    return {
        **row,
        "at": s["at"],
        "customers": sum(s["stages"].values()),
        "events_accepted": s["events_accepted"],
        "transitions": s["transitions"],
        "timers_pending": s["timers_pending"],
        "dead_letters": sum(s["dead_letters"].values()),
        "triggers_sent": sum(c["sent"] for c in s["campaigns"].values()),
        "suppressed": sum(c["suppressed"] for c in s["campaigns"].values()),
    }


def _sum_maps(maps: Iterable[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for counts in maps:
        for name, n in counts.items():
            total[name] = total.get(name, 0) + n
    return dict(sorted(total.items()))


def _sum_campaigns(rows: Iterable[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    total: dict[str, dict[str, float]] = {}
    for campaigns in rows:
        for name, counts in campaigns.items():
            into = total.setdefault(name, {"sent": 0, "held_out": 0, "suppressed": 0})
            for field, n in counts.items():
                into[field] = into.get(field, 0) + n
    return dict(sorted(total.items()))


def _sum_lift(rows: Iterable[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Closed windows per campaign (or flow) and group summed, the lift computed again from
    the sums (a sum of intervals is not an interval)."""
    counts: dict[str, dict[str, list[float]]] = {}
    for lifts in rows:
        for campaign, groups in lifts.items():
            for group, figures in groups.items():
                if group == "lift":
                    continue
                into = counts.setdefault(campaign, {}).setdefault(group, [0.0, 0.0])
                into[0] += figures["converted"]
                into[1] += figures["decisions"]
    return {campaign: lift_of(groups) for campaign, groups in sorted(counts.items())}


def _group_lag(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    worst: dict[tuple[str, int], float] = {}
    for s in summaries:
        for row in s["lag"]:
            key = (row["topic"], row["partition"])
            worst[key] = max(worst.get(key, 0), row["lag"])
    return [{"topic": t, "partition": p, "lag": n} for (t, p), n in sorted(worst.items())]


def lag_by_topic(rows: Iterable[dict[str, Any]], worst: int = WORST) -> list[dict[str, Any]]:
    """One line per topic: its partitions, its lag, and its ``worst`` lagging partitions
    (largest first; none when the topic has no lag), instead of a line per partition."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        topics.setdefault(row["topic"], []).append(row)
    lines = []
    for topic, partitions in sorted(topics.items()):
        lagging = sorted(
            (p for p in partitions if p["lag"] > 0), key=lambda p: (-p["lag"], p["partition"])
        )
        lines.append(
            {
                "topic": topic,
                "partitions": len(partitions),
                "lag": sum(p["lag"] for p in partitions),
                "worst": [{"partition": p["partition"], "lag": p["lag"]} for p in lagging[:worst]],
            }
        )
    return lines
