"""deploy/grafana/lifecycle.json, checked structurally (Grafana is not run here).

tests/integration/test_prometheus.py runs every query on a real Prometheus that
scrapes a live worker; this checks what that cannot: the panels ask for metrics
the engine exports, for the chosen job only, through the datasource variable,
laid out without overlaps.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from agents.metrics import EngineMetrics
from tests.grafana import fill, load_dashboard, panel_queries, panels

# A metric selector: a name and its label matchers.
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def exported() -> set[str]:
    """The series names a worker's /metrics has, and Prometheus's own ``up``."""
    names = {"up"}
    for family in EngineMetrics().registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def test_every_query_reads_engine_metrics_of_the_chosen_job(dashboard: dict[str, Any]) -> None:
    known = exported()
    queries = panel_queries(dashboard)
    assert len(queries) >= 15
    for query in queries:
        selectors = _SELECTOR.findall(query.expr)
        assert selectors, query
        for name, matchers in selectors:
            assert name in known, f"{query.panel}: {name} is not on /metrics"
            assert 'job="$job"' in matchers, f"{query.panel}: {name} without the job filter"
        # A metric name used bare (no braces) would read every job's series.
        bare = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", _SELECTOR.sub("", query.expr)))
        assert not bare & known, f"{query.panel}: {bare & known} without a selector"


def test_dashboard_shows_what_ops_watch(dashboard: dict[str, Any]) -> None:
    exprs = [q.expr for q in panel_queries(dashboard)]
    joined = "\n".join(exprs)

    def uses(aggregation: str, metric: str) -> bool:
        return any(aggregation in e and f"{metric}{{" in e for e in exprs)

    assert uses("sum by (stage)", "lifecycle_customers")  # the funnel
    assert uses("sum by (campaign, outcome)", "lifecycle_triggers_total")
    assert uses("sum by (from_stage, to_stage)", "lifecycle_transitions_total")
    assert any('outcome="dead_lettered"' in e and "sum by (reason)" in e for e in exprs)
    assert uses("by (consumergroup, topic, partition)", "kafka_consumergroup_lag")
    assert "deriv(kafka_consumergroup_lag{" in joined  # the trend
    for q in ("0.5", "0.99"):
        assert f"histogram_quantile({q}, sum by (cause, le)" in joined
    assert uses("sum(", "lifecycle_timers_pending")
    # Every worker measures the whole group's lag: summing over workers would double it.
    lag = [e for e in exprs if "kafka_consumergroup_lag" in e]
    assert lag
    assert [e for e in lag if re.search(r"\bsum\b", e)] == []


def test_panels_use_the_datasource_variable_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    every = list(panels(dashboard))
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in every:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])


def test_variables_pick_a_prometheus_and_a_job_that_runs_workers(
    dashboard: dict[str, Any],
) -> None:
    assert dashboard["uid"] == "lifecycle-engine"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["type"] == "query"
    match = re.fullmatch(r"label_values\((\w+), job\)", job["query"]["query"])
    assert match
    assert match.group(1) in exported()
    assert job["definition"] == job["query"]["query"]
    assert job["datasource"]["uid"] == "${datasource}"


def test_fill_replaces_each_variable_form_and_refuses_unknown_ones() -> None:
    filled = fill(
        'rate(x{job="$job", a="${job}", b="[[job]]"}[$__rate_interval])',
        {"job": "lifecycle", "__rate_interval": "1m"},
    )
    assert filled == 'rate(x{job="lifecycle", a="lifecycle", b="lifecycle"}[1m])'
    with pytest.raises(KeyError, match="__range"):
        fill("increase(x[$__range])", {"job": "lifecycle"})
