"""The dashboard's cluster figures: two workers' summaries merged read as one worker
that counted everything, lag is the group's (not summed), a silent worker is listed."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.cluster_summary import Answer, lag_by_topic, merge
from agents.metrics import EngineMetrics
from analytics.simulation import simulate
from lifecycle.backtest import Backtest, Output
from lifecycle.core import Outcome
from lifecycle.playbook import default_playbook
from schemas.codec import dumps
from streams.lag import PartitionLag
from streams.producer import partitioner

PARTITIONS = 4
partition_of = partitioner(PARTITIONS)


class CountedBacktest(Backtest):
    """The backtest, its outcomes counted as two workers (partitions 0-1 and 2-3) and as
    one worker holding every partition would count them."""

    def __init__(self) -> None:
        super().__init__(default_playbook(), partition_of, received_at=datetime.now(UTC))
        self.workers = (EngineMetrics(), EngineMetrics())
        self.everything = EngineMetrics()
        enabled = [name for name, flow in self.playbook.flows.items() if flow.enabled]
        for metrics in (*self.workers, self.everything):
            metrics.flows_known(enabled)

    def _record(self, key: str, outcome: Outcome) -> list[Output]:
        self.workers[partition_of(key) // 2].count(outcome)
        self.everything.count(outcome)
        return super()._record(key, outcome)


def counted() -> CountedBacktest:
    runner = CountedBacktest()
    lines = [dumps(event) for event in simulate(150, seed=3)]
    for _ in runner.run(lines):
        pass
    for metrics, partitions in ((runner.workers[0], {0, 1}), (runner.workers[1], {2, 3})):
        stages: dict[str, int] = {}
        for key, state in runner.states.items():
            if partition_of(key) in partitions and state.stage:
                stages[state.stage.value] = stages.get(state.stage.value, 0) + 1
        metrics.stages(stages.items())
    runner.everything.stages(
        {
            stage: sum(1 for s in runner.states.values() if s.stage and s.stage.value == stage)
            for stage in {s.stage.value for s in runner.states.values() if s.stage}
        }.items()
    )
    return runner


def test_two_workers_merged_read_as_one_that_counted_everything() -> None:
    runner = counted()
    one, two = (dict(m.summary(), at=1.0) for m in runner.workers)
    merged = merge([Answer("http://a:1", one), Answer("http://b:2", two)], "http://a:1", 5.0)
    alone = runner.everything.summary()
    assert alone["lift"]
    assert one["transitions"]
    assert two["transitions"]
    fields = ("transitions", "events_accepted", "dead_letters", "campaigns", "lift", "flows")
    for field in (*fields, "flow_lift"):
        assert merged[field] == alone[field], field
    # The flow counters are the backtest's own figures, and sends are every trigger's.
    assert merged["flows"] == runner.summary.as_dict()["flows"]
    assert sum(f["sent"] + f["held_out"] for f in merged["flows"].values()) == (
        runner.summary.triggers
    )
    assert merged["flow_lift"]
    assert merged["stages"] == dict(sorted(alone["stages"].items()))
    assert any(c["suppressed"] for c in merged["campaigns"].values())
    assert (merged["expected"], merged["answered"]) == (2, 2)
    rows = {row["worker"]: row for row in merged["workers"]}
    assert rows["http://a:1"]["customers"] == sum(one["stages"].values())
    assert rows["http://b:2"]["transitions"] == two["transitions"]
    assert rows["http://b:2"]["suppressed"] == sum(
        c["suppressed"] for c in two["campaigns"].values()
    )


def test_lag_is_the_groups_and_a_silent_worker_is_listed() -> None:
    first, second = EngineMetrics(), EngineMetrics()
    first.lags({"g": [PartitionLag("in", 0, 10, 7, 3), PartitionLag("in", 1, 5, 5, 0)]})
    second.lags({"g": [PartitionLag("in", 0, 10, 10, 0), PartitionLag("in", 1, 9, 5, 4)]})
    answers = [
        Answer("http://a:1", dict(first.summary(), at=1.0)),
        Answer("http://b:2", dict(second.summary(), at=1.0)),
        Answer("http://c:3", None, "no answer in 2 s"),
    ]
    merged = merge(answers, "http://a:1", 5.0)
    assert merged["lag_total"] == 7  # each partition's largest, not the sum of both views
    assert merged["lag_topics"] == [
        {
            "topic": "in",
            "partitions": 2,
            "lag": 7,
            "worst": [{"partition": 1, "lag": 4}, {"partition": 0, "lag": 3}],
        }
    ]
    assert (merged["expected"], merged["answered"]) == (3, 2)
    assert merged["workers"][2] == {
        "worker": "http://c:3",
        "ok": False,
        "error": "no answer in 2 s",
    }


def test_the_lag_table_has_a_line_per_topic_and_its_worst_partitions() -> None:
    rows = [{"topic": t, "partition": p, "lag": 0} for t in ("a", "b", "c") for p in range(16)]
    rows[5]["lag"] = 9
    rows[7]["lag"] = 2
    rows[9]["lag"] = 9
    rows[11]["lag"] = 1
    rows[12]["lag"] = 1
    lines = lag_by_topic(rows)
    assert [line["topic"] for line in lines] == ["a", "b", "c"]
    assert lines[0]["lag"] == 22
    assert lines[0]["partitions"] == 16
    assert lines[0]["worst"] == [
        {"partition": 5, "lag": 9},
        {"partition": 9, "lag": 9},
        {"partition": 7, "lag": 2},
    ]
    assert lines[1] == {"topic": "b", "partitions": 16, "lag": 0, "worst": []}
