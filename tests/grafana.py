"""deploy/grafana/lifecycle.json read the way Grafana runs it: each panel's queries,
with the dashboard's variables filled in, so tests can run them on a real Prometheus.

Grafana is not needed for that: a panel's query is plain PromQL once its
variables (``$job``, ``$__rate_interval``, ``${datasource}``...) are replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "lifecycle.json"

# $name, ${name}, ${name:format} and the old [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str
    instant: bool


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' collapsed panels included (rows themselves too)."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The PromQL of every query of every panel, variables still in."""
    return [
        PanelQuery(panel["title"], target["refId"], target["expr"], bool(target.get("instant")))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def fill(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with every Grafana variable replaced; an unknown one is an error,
    so a query never reaches Prometheus with a ``$`` left in it."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name not in variables:
            msg = f"no value for Grafana variable {name!r} in {expr!r}"
            raise KeyError(msg)
        return variables[name]

    return _VARIABLE.sub(value, expr)
