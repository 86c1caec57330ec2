"""docker-compose.yml and Dockerfile, checked without Docker.

The stack cannot be run here, so the next best thing: its services and their
order are the intended ones, and every LIFECYCLE_* variable it sets is a real
setting that takes effect (a misspelt one would be silently ignored by
pydantic-settings, and the container would run with a default).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.broker import KAFKA_VERSION
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SERVICES = ("topics", "worker-1", "worker-2", "mailer")
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment in either compose form (mapping or KEY=VALUE list)."""
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def _setting(settings: Settings, env_name: str) -> object:
    """The Settings value an env var feeds: LIFECYCLE_TOPICS__CART -> settings.topics.cart."""
    value: object = settings
    for part in env_name.removeprefix("LIFECYCLE_").lower().split("__"):
        value = getattr(value, part)
    return value


def test_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= {"kafka", "mailpit", "prometheus", "grafana", *ENGINE_SERVICES}


def test_mailer_sends_to_the_smtp_catcher(services: dict[str, dict[str, Any]]) -> None:
    mailer = services["mailer"]
    assert mailer["command"] == ["lifecycle", "mailer"]
    env = _env(mailer)
    assert env["LIFECYCLE_SMTP_HOST"] == "mailpit"
    assert env["LIFECYCLE_MAILER_OUTBOX"].startswith("/data/")  # on its volume: survives restarts
    assert any(v.endswith(":/data") for v in mailer["volumes"])
    assert "mailpit" in mailer["depends_on"]
    assert "127.0.0.1:8025:8025" in services["mailpit"]["ports"]


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts, container path -> file or directory in this repository."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def test_every_bind_mount_exists_read_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if str(volume).startswith("./"):
                assert (ROOT / str(volume).split(":")[0]).exists(), f"{name}: {volume}"
                assert str(volume).endswith(":ro"), f"{name}: {volume}"


def test_prometheus_scrapes_every_worker_on_its_port(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    config = _yaml(_mounts(prometheus)["/etc/prometheus/prometheus.yml"])
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:{_env(services[name])['LIFECYCLE_WEB_PORT']}" for name in WORKERS}


def test_kafka_is_a_single_kraft_node_reachable_as_kafka_9092(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["CLUSTER_ID"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "PLAINTEXT://:9092" in env["KAFKA_LISTENERS"].split(",")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "kafka:9092" in kafka["healthcheck"]["test"]


def test_commands_and_start_order(services: dict[str, dict[str, Any]]) -> None:
    topics = services["topics"]
    assert topics["command"] == ["lifecycle", "topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in WORKERS:
        worker = services[name]
        assert worker["command"] == ["lifecycle", "worker"]
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_engine_services_use_our_image_and_only_lifecycle_env(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ENGINE_SERVICES:
        service = services[name]
        assert service["build"] == "."
        env = _env(service)
        assert env["LIFECYCLE_BROKER"] == "kafka:9092"
        assert all(key.startswith("LIFECYCLE_") for key in env), name


def test_workers_have_distinct_published_web_ports(services: dict[str, dict[str, Any]]) -> None:
    ports = [_env(services[name])["LIFECYCLE_WEB_PORT"] for name in WORKERS]
    assert len(set(ports)) == len(WORKERS)
    for name, port in zip(WORKERS, ports, strict=True):
        assert f"127.0.0.1:{port}:{port}" in services[name]["ports"]  # no token: loopback
        assert _env(services[name])["LIFECYCLE_WEB_HOST"] == name


def _lifecycle_vars(services: dict[str, dict[str, Any]], dockerfile: str) -> list[dict[str, str]]:
    """Each engine service's full LIFECYCLE_* environment, image defaults included."""
    image_env = dict(re.findall(r"(LIFECYCLE_[A-Z0-9_]+)=(\S+)", dockerfile))
    return [image_env | _env(services[name]) for name in ENGINE_SERVICES]


def test_every_lifecycle_variable_is_a_setting_that_takes_effect(
    services: dict[str, dict[str, Any]], dockerfile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in _lifecycle_vars(services, dockerfile):
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("LIFECYCLE_")]:
                patch.delenv(key)
            for key, value in env.items():
                patch.setenv(key, value)
            settings = Settings()
            for key, value in env.items():
                top = key.removeprefix("LIFECYCLE_").lower().split("__")[0]
                assert top in Settings.model_fields, f"{key} is not a setting"
                got = _setting(settings, key)
                if isinstance(got, bool):
                    assert got == (value.lower() in ("true", "1", "yes", "on")), key
                else:
                    assert str(got) == value, key


def test_dockerfile_installs_the_project(dockerfile: str) -> None:
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install \.(\s|$)", dockerfile, re.MULTILINE)
    assert '"lifecycle"' in dockerfile

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied = re.findall(r"^COPY (.+?) \S+\s*$", dockerfile, re.MULTILINE)
    sources = {source for line in copied for source in line.split()}
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in includes}
    assert packages <= sources, "every package the build includes must be copied in"
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= sources


def test_every_published_port_is_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    """The stack runs without an API token, so nothing it publishes may face a network."""
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published
    assert [p for p in published if not str(p).startswith("127.0.0.1:")] == []


def test_prometheus_loads_the_alert_rules(services: dict[str, dict[str, Any]]) -> None:
    """Each rule file the config names (relative to it) is mounted there, from the
    same place next to the config in this repository, so promtool checks it here."""
    mounts = _mounts(services["prometheus"])
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    rule_files = _yaml(config_path)["rule_files"]
    assert rule_files
    for name in rule_files:
        assert mounts[f"/etc/prometheus/{name}"] == config_path.parent / name
        groups = _yaml(config_path.parent / name)["groups"]
        assert {"LifecycleLagGrowing", "LifecycleDeadLetters", "LifecycleNoEvents"} <= {
            rule["alert"] for group in groups for rule in group["rules"]
        }


def test_grafana_reads_prometheus_and_provisions_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert "prometheus" in grafana["depends_on"]
    assert "127.0.0.1:3000:3000" in grafana["ports"]
    mounts = _mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]

    [datasource] = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in services["prometheus"]["ports"]  # its container port
    # Grafana's $__rate_interval is at least four of these: they must match the scrapes.
    prometheus_config = _yaml(_mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"])
    interval = prometheus_config["global"]["scrape_interval"]
    assert datasource["jsonData"]["timeInterval"] == interval

    [provider] = _yaml(provisioning / "dashboards" / "lifecycle.yml")["providers"]
    assert provider["type"] == "file"
    folder = provider["options"]["path"]
    dashboards = {
        target: source for target, source in mounts.items() if target.startswith(folder + "/")
    }
    assert dashboards == {f"{folder}/lifecycle.json": ROOT / "deploy/grafana/lifecycle.json"}
    dashboard = json.loads(dashboards[f"{folder}/lifecycle.json"].read_text(encoding="utf-8"))
    assert dashboard["uid"] == "lifecycle-engine"
    assert _env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] in dashboards
    # The dashboard picks its datasource through a variable, so the provisioned
    # default (or any other Prometheus, when imported elsewhere) serves it.
    assert {"type": "datasource", "query": "prometheus"}.items() <= next(
        v for v in dashboard["templating"]["list"] if v["name"] == "datasource"
    ).items()
