"""Without java or mvn the launcher must say what is missing and how to do without it.

No broker is started: PATH is narrowed to a directory holding only the tools a
test wants present (as stub scripts), so the check fails before anything runs.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from streams.broker import KAFKA_VERSION, BrokerError, LocalBroker, find_free_port


def _path_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *tools: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        stub = bin_dir / tool
        stub.write_text("#!/bin/sh\nexit 99\n")
        stub.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def _broker(tmp_path: Path, *, jars_complete: bool = False) -> LocalBroker:
    jars = tmp_path / "jars"
    if jars_complete:
        jars.mkdir()
        (jars / ".complete").write_text("test\n")
    return LocalBroker(port=find_free_port(), home=tmp_path / "home", jars_dir=jars)


def test_neither_java_nor_mvn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path)
    broker = _broker(tmp_path)
    with pytest.raises(BrokerError) as info:
        broker.start()
    message = str(info.value)
    assert "`java` and `mvn` are not on PATH" in message
    assert "apt-get install openjdk-17-jre-headless maven" in message
    assert "LIFECYCLE_BROKER=host:port" in message
    assert not broker.pid_path.exists()
    assert not broker.status().running


def test_mvn_missing_while_jars_are_not_fetched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _path_with(monkeypatch, tmp_path, "java")
    broker = _broker(tmp_path)
    with pytest.raises(BrokerError, match=r"`mvn` is not on PATH") as info:
        broker.start()
    assert "`java`" not in str(info.value)
    assert "LIFECYCLE_BROKER" in str(info.value)
    with pytest.raises(BrokerError, match=r"`mvn` is not on PATH"):
        broker.ensure_jars()
    assert not broker.jars_ready()


def test_java_missing_once_jars_are_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path)  # no mvn either: cached jars do not need it
    broker = _broker(tmp_path, jars_complete=True)
    assert broker.ensure_jars() == broker.jars_dir
    with pytest.raises(BrokerError, match=r"`java` is not on PATH") as info:
        broker.start()
    assert "`mvn`" not in str(info.value)
    assert "LIFECYCLE_BROKER" in str(info.value)


def test_java_home_is_preferred_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _path_with(monkeypatch, tmp_path)
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text("#!/bin/sh\nexit 99\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    broker = _broker(tmp_path, jars_complete=True)
    # java is found, so the launcher gets past the tool check and fails formatting
    # with the stub's exit code instead.
    with pytest.raises(BrokerError, match="exit code 99"):
        broker.start()


def test_packaged_pom_defaults_to_the_launcher_version() -> None:
    kafka_dir = resources.files("streams").joinpath("kafka")
    pom = kafka_dir.joinpath("pom.xml").read_text(encoding="utf-8")
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert found is not None
    assert found.group(1) == KAFKA_VERSION
    assert kafka_dir.joinpath("log4j.properties").is_file()
