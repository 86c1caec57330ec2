"""Debian's Prometheus as a child process: the shipped config and alert rules,
scraping the test's workers, queried through its HTTP API as Grafana does."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.engine import ROOT, terminate
from streams.broker import find_free_port

CONFIG_DIR = ROOT / "deploy" / "prometheus"
CONFIG = CONFIG_DIR / "prometheus.yml"


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; missing, the test fails saying how to
    install them (they are a real dependency of the tests, never a reason to skip)."""
    path = shutil.which(name)
    if path is None:
        hint = "`make prometheus` installs Debian's prometheus"
        pytest.fail(f"{name} not found: {hint}", pytrace=False)
    return path


def shipped_config() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def scrape_config(targets: list[str], interval: str = "1s") -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the test's targets and a short interval:
    its job name, metrics path and rule files (made absolute) stay as shipped."""
    config = shipped_config()
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": interval,
        "evaluation_interval": interval,
    }
    config["rule_files"] = [str(CONFIG_DIR / name) for name in config["rule_files"]]
    [job] = config["scrape_configs"]
    job["static_configs"] = [{"targets": targets}]
    return config


class Prometheus:
    """``prometheus`` on a free loopback port, its data and log under ``home``."""

    def __init__(self, home: Path, config: dict[str, Any]) -> None:
        self.home = home
        self.config_path = home / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log_path = home / "prometheus.log"
        self.port = find_free_port(1)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def stop(self) -> None:
        terminate(self.process, 30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"prometheus exited: {self.log_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/PATH``'s data; an error answer (a query that does not parse or
        fails to run) fails the test with Prometheus's own message."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - http only
                body = json.loads(reply.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now: [{"metric": labels, "value": x}]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data['resultType']}"
        return [
            {"metric": row["metric"], "value": float(row["value"][1])} for row in data["result"]
        ]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[float]:
        """Every value of every series of ``expr`` from ``start`` to ``end`` (Unix
        seconds), one point per ``step``: what a Grafana time series panel draws."""
        data = self.api("query_range", query=expr, start=str(start), end=str(end), step=str(step))
        assert data["resultType"] == "matrix", f"{expr}: {data['resultType']}"
        return [float(v) for row in data["result"] for _, v in row["values"]]

    def value(self, expr: str) -> float | None:
        """The value of a query that yields at most one series (None: no series)."""
        rows = self.query(expr)
        assert len(rows) <= 1, f"{expr}: {rows}"
        return rows[0]["value"] if rows else None
