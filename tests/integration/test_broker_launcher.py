"""The local broker launcher against real Kafka processes: each test starts its own.

These tests do not use the shared ``kafka_bootstrap`` broker because they stop,
restart and break brokers on purpose; each gets a free port and a tmp home
(the jars come from the shared cache, so only the first run ever downloads).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import NewTopic
from click.testing import CliRunner

from cli.kafka import kafka_group
from streams.broker import BrokerError, LocalBroker, broker_ready, find_free_port
from streams.kafka import admin_client, consumer, producer
from streams.settings import Settings


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test only; stopped whatever the test did to it."""
    local = LocalBroker(port=find_free_port(), home=tmp_path / "kafka")
    try:
        yield local
    finally:
        local.stop()


def test_start_stop_restart_keeps_topics(broker: LocalBroker, tmp_path: Path) -> None:
    first = broker.start()
    assert first.running
    assert first.pid is not None
    assert first.formatted
    assert first.start_seconds is not None
    assert first.start_seconds > 0
    assert first.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.pid_path.read_text().strip() == str(first.pid)
    assert broker_ready(first.bootstrap)
    assert broker.jars_ready()
    assert broker.ensure_jars() == broker.jars_dir

    topic = f"launcher-{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_topic(first.bootstrap, topic))
    asyncio.run(_produce(first.bootstrap, topic, b"before restart"))
    assert asyncio.run(_consume(first.bootstrap, topic, count=1)) == [b"before restart"]

    again = broker.start()
    assert again.pid == first.pid
    assert again.start_seconds is None
    assert not again.formatted

    # Another process knows only the home: it finds the broker and its real port.
    elsewhere = LocalBroker(port=find_free_port(), home=broker.home)
    seen = elsewhere.status()
    assert seen.running
    assert seen.pid == first.pid
    assert seen.bootstrap == first.bootstrap

    # A second home on the same port is told that a Kafka already answers there.
    rival = LocalBroker(port=broker.port, home=tmp_path / "rival")
    with pytest.raises(BrokerError, match="another Kafka broker") as refused:
        rival.start()
    assert f"LIFECYCLE_BROKER={first.bootstrap}" in str(refused.value)

    assert broker.stop() is True
    stopped = broker.status()
    assert not stopped.running
    assert stopped.pid is None
    assert not broker.pid_path.exists()
    assert not _alive(first.pid)
    assert _port_closed(broker.port)
    assert broker.stop() is False

    warm = broker.start()
    assert warm.running
    assert warm.pid != first.pid
    assert not warm.formatted
    assert topic in asyncio.run(_list_topics(warm.bootstrap))
    assert asyncio.run(_consume(warm.bootstrap, topic, count=1)) == [b"before restart"]


def test_cli_start_status_stop(tmp_path: Path) -> None:
    port = find_free_port()
    home = tmp_path / "kafka"
    env = {
        "LIFECYCLE_KAFKA_DIR": str(home),
        "LIFECYCLE_KAFKA_PORT": str(port),
        "LIFECYCLE_BROKER": f"127.0.0.1:{port}",
    }
    runner = CliRunner()
    try:
        before = _status_json(runner, env)
        assert before["running"] is False
        assert before["bootstrap"] == f"127.0.0.1:{port}"

        started = runner.invoke(kafka_group, ["start"], env=env)
        assert started.exit_code == 0, started.output
        assert f"is running at 127.0.0.1:{port}" in started.stdout
        assert "started in" in started.stdout
        assert "Note: LIFECYCLE_BROKER" not in started.stdout

        running = _status_json(runner, env)
        assert running["running"] is True
        assert isinstance(running["pid"], int)
        assert running["log_path"] == str(home / "broker.log")
        assert running["data_dir"] == str(home / "data")
        assert Path(str(running["log_path"])).is_file()

        text = runner.invoke(kafka_group, ["status"], env=env)
        assert text.exit_code == 0
        assert f"running (pid {running['pid']})" in text.stdout
        assert f"bootstrap: 127.0.0.1:{port}" in text.stdout

        again = runner.invoke(kafka_group, ["start"], env=env)
        assert again.exit_code == 0
        assert f"already running at 127.0.0.1:{port} (pid {running['pid']})" in again.stdout

        stopped = runner.invoke(kafka_group, ["stop"], env=env)
        assert stopped.exit_code == 0
        assert f"Kafka stopped (was pid {running['pid']}" in stopped.stdout
        assert _status_json(runner, env)["running"] is False
        assert _port_closed(port)

        idle = runner.invoke(kafka_group, ["stop"], env=env)
        assert idle.exit_code == 0
        assert "not running" in idle.stdout
    finally:
        LocalBroker(port=port, home=home).stop()


def test_port_taken_by_another_program_is_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = int(squatter.getsockname()[1])
        broker = LocalBroker(port=port, home=tmp_path / "kafka")

        with pytest.raises(BrokerError, match=f"Port {port} .* in use by another program") as info:
            broker.start()
        assert "LIFECYCLE_KAFKA_PORT" in str(info.value)
        assert not broker.pid_path.exists()

        env = {"LIFECYCLE_KAFKA_DIR": str(tmp_path / "kafka"), "LIFECYCLE_KAFKA_PORT": str(port)}
        result = CliRunner().invoke(kafka_group, ["start"], env=env)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: Port {port}")
        assert "Traceback" not in result.output


def test_broker_dying_at_start_reports_its_log(broker: LocalBroker) -> None:
    # Storage that claims another node id: Kafka refuses it and exits at once.
    broker.data_dir.mkdir(parents=True)
    (broker.data_dir / "meta.properties").write_text(
        "version=1\ncluster.id=M9RiVPjeTlGp4Q6nJPlIdQ\nnode.id=7\n"
        "directory.id=8SxAN9UGUSoPxNYShiIdzw\n"
    )
    with pytest.raises(BrokerError, match="exited with code") as info:
        broker.start(timeout=60)
    assert str(broker.log_path) in str(info.value)
    assert "node id" in str(info.value)
    assert not broker.pid_path.exists()
    assert not broker.status().running


def test_start_timeout_leaves_no_process(broker: LocalBroker) -> None:
    with pytest.raises(BrokerError, match="did not answer") as info:
        broker.start(timeout=0.2)
    found = re.search(r"\(pid (\d+), now stopped\)", str(info.value))
    assert found is not None, str(info.value)
    assert not _alive(int(found.group(1)))
    assert not broker.pid_path.exists()
    assert _port_closed(broker.port)


def test_session_broker_fixture_answers(kafka_bootstrap: str) -> None:
    """The broker other integration tests get: reachable, and it accepts a round trip."""
    assert broker_ready(kafka_bootstrap)
    topic = f"fixture-{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_topic(kafka_bootstrap, topic))
    asyncio.run(_produce(kafka_bootstrap, topic, b"hello"))
    assert asyncio.run(_consume(kafka_bootstrap, topic, count=1)) == [b"hello"]


# -- helpers -------------------------------------------------------------------


def _status_json(runner: CliRunner, env: dict[str, str]) -> dict[str, object]:
    result = runner.invoke(kafka_group, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def _port_closed(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z")


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = admin_client(Settings(broker=bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _list_topics(bootstrap: str) -> set[str]:
    admin = admin_client(Settings(broker=bootstrap))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    sender = producer(Settings(broker=bootstrap), acks="all")
    await sender.start()
    try:
        await sender.send_and_wait(topic, value, key=b"launcher")
    finally:
        await sender.stop()


async def _consume(bootstrap: str, topic: str, *, count: int) -> list[bytes]:
    reader = consumer(
        Settings(broker=bootstrap),
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await reader.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < count:
                batches = await reader.getmany(timeout_ms=500)
                values.extend(r.value for records in batches.values() for r in records)
    finally:
        await reader.stop()
    return values
