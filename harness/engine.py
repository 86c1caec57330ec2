"""Running the engine from outside, for integration tests and benchmarks: a real worker
process on the real broker, and what publishes to it, reads it and compares it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from lifecycle.backtest import Backtest, Output
from lifecycle.clock import ClockMode
from lifecycle.flows.tally import MEASURES, FlowCounts
from lifecycle.playbook import load_playbook
from schemas.codec import dumps, loads, to_jsonable
from schemas.records import OUTPUT_TOPICS
from streams.admin import ensure_topics
from streams.broker import find_free_port
from streams.kafka import admin_client, consumer, producer
from streams.lag import PartitionLag, lag_probes
from streams.producer import partitioner_of, publish_events
from streams.reader import read_to_end
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

OUTPUTS = list(OUTPUT_TOPICS)


def unique_settings(
    bootstrap: str, tmp: Path, partitions: int = 4, clock: ClockMode = ClockMode.EVENT
) -> Settings:
    """Settings with topics, group and store of their own, so tests never share state.

    Event time by default: tests publish history and compare with the backtest,
    which is event time; the wall clock would fire every timer up to today.
    """
    tag = uuid.uuid4().hex[:8]
    return Settings(
        clock=clock,
        broker=bootstrap,
        topic_prefix=f"t{tag}.",
        app_id=f"test-{tag}",
        partitions=partitions,
        data_dir=tmp / f"worker-{tag}",
        web_port=find_free_port(1),
        store="rocksdb",
    )


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        "LIFECYCLE_BROKER": settings.broker,
        "LIFECYCLE_TOPIC_PREFIX": settings.topic_prefix,
        "LIFECYCLE_APP_ID": settings.app_id,
        "LIFECYCLE_PARTITIONS": str(settings.partitions),
        "LIFECYCLE_DATA_DIR": str(settings.data_dir),
        "LIFECYCLE_WEB_PORT": str(settings.web_port),
        "LIFECYCLE_STORE": settings.store,
        "LIFECYCLE_LOG_LEVEL": "info",
        "LIFECYCLE_CLOCK": settings.clock.value,
        "LIFECYCLE_ALLOWED_LATENESS": str(settings.allowed_lateness),
        "LIFECYCLE_TICK_INTERVAL": str(settings.tick_interval),
        "LIFECYCLE_LAG_INTERVAL": str(settings.lag_interval),
        "LIFECYCLE_SESSION_TIMEOUT": str(settings.session_timeout),
        "LIFECYCLE_INPUT_PARTITIONER": settings.input_partitioner,
        **({"LIFECYCLE_PLAYBOOK": str(settings.playbook)} if settings.playbook else {}),
        **{
            f"LIFECYCLE_MAILER_MAX_AGE__{campaign.upper()}": str(seconds)
            for campaign, seconds in settings.mailer_max_age.items()
        },
        **security_env(settings),
    }


def security_env(settings: Settings) -> dict[str, str]:
    """The Kafka login and the API token of ``settings``, as a child process reads them."""
    secrets = {
        "LIFECYCLE_BROKER_SASL_PASSWORD": settings.broker_sasl_password,
        "LIFECYCLE_BROKER_SSL_KEY_PASSWORD": settings.broker_ssl_key_password,
        "LIFECYCLE_API_TOKEN": settings.api_token,
    }
    plain = {
        "LIFECYCLE_BROKER_SECURITY_PROTOCOL": settings.broker_security_protocol,
        "LIFECYCLE_BROKER_SASL_MECHANISM": settings.broker_sasl_mechanism,
        "LIFECYCLE_BROKER_SASL_USERNAME": settings.broker_sasl_username,
        "LIFECYCLE_BROKER_SSL_CAFILE": settings.broker_ssl_cafile,
        "LIFECYCLE_BROKER_SSL_CERTFILE": settings.broker_ssl_certfile,
        "LIFECYCLE_BROKER_SSL_KEYFILE": settings.broker_ssl_keyfile,
        "LIFECYCLE_BROKER_SSL_CHECK_HOSTNAME": str(settings.broker_ssl_check_hostname).lower(),
    }
    env = {k: str(v) for k, v in plain.items() if v is not None}
    env.update({k: v.get_secret_value() for k, v in secrets.items() if v is not None})
    return env


def run_cli(
    settings: Settings, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``lifecycle ARGS`` as a user runs it, configured by the settings' environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env.update(settings_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def terminate(process: subprocess.Popen[bytes] | None, grace: float) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it is still running after ``grace`` s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Worker:
    """``lifecycle worker`` as a child process; its log is kept for the test report."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        command: tuple[str, ...] = ("worker",),
        env: dict[str, str] | None = None,
        root: Path = ROOT,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.command = command
        self.extra_env = env or {}
        self.root = root
        """The checkout whose code the worker runs (another revision's, for a comparison)."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
        env.update(settings_env(self.settings))
        env.update(self.extra_env)
        if self.root != ROOT:  # its code first, whatever the interpreter has installed
            env["PYTHONPATH"] = str(self.root)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", *self.command],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def stop(self) -> None:
        """SIGTERM, and SIGKILL only if the clean stop overran its bound by a minute."""
        grace = self.settings.stop_timeout if self.settings is not None else 30.0
        terminate(self.process, grace + 60)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it consumes nothing until ``resume``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def assert_alive(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, f"worker exited: {self.log_text()[-3000:]}"

    def status(self) -> str:
        """Running or its exit code, and the end of its log: for a failed wait's message."""
        assert self.process is not None
        code = self.process.poll()
        state = "running" if code is None else f"exited with {code}"
        return f"worker pid {self.process.pid} {state}; its log ends:\n{self.log_text()[-3000:]}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def backtest(
    settings: Settings, events: list[dict[str, Any]], until: datetime | None = None
) -> tuple[Backtest, list[Output]]:
    """The pure core's answer to ``events``, partitioned and merged as the workers do it,
    under the workers' playbook: what every comparison with the broker path is against."""
    runner = Backtest(
        load_playbook(settings.playbook),
        partitioner_of(settings),
        limits=settings.input_limits,
        received_at=datetime.now(UTC),
    )
    items = list(runner.run([dumps(event) for event in events], until=until))
    outputs = [item for item in items if isinstance(item, Output)]
    assert len(outputs) == len(items), "a reference input line was rejected"
    return runner, outputs


def create_topics(settings: Settings) -> None:
    asyncio.run(ensure_topics(settings))


def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """The broker's configuration of ``topic``, name -> value (defaults included)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async def describe() -> dict[str, str]:
        admin = admin_client(settings)
        await admin.start()
        try:
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
        finally:
            await admin.close()
        [(error, message, _type, _name, entries)] = response.resources
        assert error == 0, message
        return {entry[0]: entry[1] for entry in entries}

    return asyncio.run(describe())


def publish(settings: Settings, events: Iterable[dict[str, Any]], rate: float = 0.0) -> int:
    return asyncio.run(publish_events(settings, events, rate=rate))


def publish_raw(settings: Settings, records: list[tuple[str, bytes | None, bytes]]) -> None:
    """Send (topic, key, value) exactly as given: the way a broken producer would."""

    async def send() -> None:
        sender = producer(settings, acks="all")
        await sender.start()
        try:
            for topic, key, value in records:
                await sender.send_and_wait(topic, value, key=key)
        finally:
            await sender.stop()

    asyncio.run(send())


def collect(
    settings: Settings,
    logical: Iterable[str],
    expected: int,
    *,
    timeout: float = 300.0,
    quiet: float = 3.0,
) -> list[dict[str, Any]]:
    """Read the named output topics until ``expected`` records came and ``quiet`` s passed.

    Waiting past the expected count catches outputs that should not exist.
    Each record: {"topic", "partition", "offset", "key", "value"}.
    """
    names = [settings.topic(n) for n in logical]

    async def read() -> list[dict[str, Any]]:
        reader = consumer(settings, *names, group_id=None, auto_offset_reset="earliest")
        await reader.start()
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        try:
            while time.monotonic() < deadline:
                batches = await reader.getmany(timeout_ms=500)
                for tp, batch in batches.items():
                    for r in batch:
                        last_new = time.monotonic()
                        records.append(
                            {
                                "topic": tp.topic,
                                "partition": tp.partition,
                                "offset": r.offset,
                                "key": None if r.key is None else r.key.decode(),
                                "value": loads(r.value) if r.value else None,
                            }
                        )
                if len(records) >= expected and time.monotonic() - last_new >= quiet:
                    break
        finally:
            await reader.stop()
        return records

    return asyncio.run(read())


def stored_states(
    settings: Settings, *, table: str = "customers", timeout: float = 120.0
) -> dict[str, Any]:
    """Every record a worker of ``settings`` holds in ``table`` (customer records by
    default), read from the table's changelog to the end: the latest value per key,
    deleted (erased) keys absent."""
    topic = f"{settings.app_id}-{table}-changelog"
    messages = asyncio.run(asyncio.wait_for(read_to_end(settings, [topic]), timeout))
    latest: dict[str, Any] = {}
    for m in messages:
        key = (m.key or b"").decode()
        if m.value is None:
            latest.pop(key, None)
        else:
            latest[key] = loads(m.value)
    return latest


def record_differences(got: dict[str, Any], want: dict[str, Any], limit: int = 3) -> list[str]:
    """One line per field in which records (``stored_states``) differ from the expected
    ones, for the first ``limit`` keys that differ: a list field is shown from the
    first item that differs, so an order or a repeat is seen whole, not cut off."""
    lines: list[str] = []
    for key in [k for k in want if k in got and got[k] != want[k]][:limit]:
        for name in sorted(set(got[key]) | set(want[key])):
            mine, theirs = got[key].get(name), want[key].get(name)
            if mine == theirs:
                continue
            if isinstance(mine, list) and isinstance(theirs, list):
                at = next(
                    (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
                    min(len(mine), len(theirs)),
                )
                lines.append(
                    f"{key}.{name}: {len(mine)} against {len(theirs)} items, from [{at}]: "
                    f"{mine[at : at + 6]!r} against {theirs[at : at + 6]!r}"
                )
            else:
                lines.append(f"{key}.{name}: {mine!r} against {theirs!r}")
    return lines


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(settings: Settings) -> Samples:
    """Every sample on a worker's /metrics, by name and sorted labels."""
    request = urllib.request.Request(f"http://{settings.web_host}:{settings.web_port}/metrics")
    if settings.api_token is not None:
        request.add_header("Authorization", f"Bearer {settings.api_token.get_secret_value()}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http only
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def flow_counts(samples: Samples) -> dict[str, dict[str, Any]]:
    """The ``lifecycle_flow_<measure>_total`` samples as the backtest's ``flows`` JSON."""
    counts = FlowCounts()
    names = {f"lifecycle_flow_{m}_total": m for m in MEASURES}
    for (name, labels), count in samples.items():
        if name in names:
            have = dict(labels)
            counts[have["flow"]].add(names[name], have.get("reason", ""), int(count))
    return counts.as_dict()


def wait_ready(settings: Settings, timeout: float = 300) -> dict[str, Any]:
    """The worker's ``/ready`` answer once it is 200 (or the last one at the timeout)."""
    deadline = time.monotonic() + timeout
    url = f"http://{settings.web_host}:{settings.web_port}/ready"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=15) as reply:
                status, body = reply.status, loads(reply.read())
        except urllib.error.HTTPError as err:
            status, body = err.code, loads(err.read() or b"{}")
        except OSError:
            status, body = 0, {}
        if status == 200 or time.monotonic() > deadline:
            return {"status": status, **body}
        time.sleep(0.5)


def wait_for(check: Any, timeout: float = 300.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


_WORD = re.compile(r"\w+")


def personal_data_in(text: str, events: Iterable[dict[str, Any]]) -> list[str]:
    """The emails and names of ``events`` that occur in ``text`` (a log): must be none.

    Names are matched as whole, case-sensitive words, so "Ada" is found in
    "for Ada" but not in "MergeAdapter".

    Each distinct value is looked for once, and only if every word of it is a word
    of ``text``: a whole-word match needs that, and the check is a set lookup, so
    a soak's 20,000 customers cost seconds, not a regular-expression scan of
    the log per event.
    """
    words = set(_WORD.findall(text))
    values = {
        value
        for event in events
        for field in ("email", "first_name")
        if isinstance(value := event.get(field), str) and value
    }
    return sorted(
        value
        for value in values
        if words.issuperset(_WORD.findall(value))
        and value in text
        and re.search(rf"(?<![\w@.]){re.escape(value)}(?![\w@])", text)
    )


async def _measure_groups(settings: Settings) -> list[tuple[str, list[PartitionLag]]]:
    """Each consumer group of ``settings`` with its partitions' lag, from the broker:
    the lifecycle agent's, and the re-keying stage's too in repartition mode."""
    measured = []
    for probe in lag_probes(settings):
        async with probe:
            measured.append((probe.group, await probe.measure()))
    return measured


def lag_report(settings: Settings) -> str:
    """Each group's partitions that still lag, ``topic[partition] committed/end``: what a
    test that never caught up prints, to tell a stuck partition from a slow machine."""
    try:
        measured = asyncio.run(_measure_groups(settings))
    except KafkaError as exc:
        return f"lag unknown ({exc!r})"
    lagging = [
        f"{group}:{r.topic}[{r.partition}] {r.committed}/{r.end}"
        for group, rows in measured
        for r in rows
        if r.lag
    ]
    return ", ".join(lagging) or "no lag"


def events_left(settings: Settings) -> int:
    """Inbound events the lifecycle agent's group has not committed yet: what the workers
    after a clean stop still have to apply (the stop commits all it applied)."""
    _, rows = asyncio.run(_measure_groups(settings))[0]  # the lifecycle agent's group
    topics = set(settings.event_topics)
    return sum(row.lag for row in rows if row.topic in topics)


def wait_caught_up(settings: Settings, timeout: float = 600.0, steady: float = 3.0) -> bool:
    """Wait until the groups of ``settings`` have committed every inbound and merge
    message, and stays so for ``steady`` seconds: all input applied and flushed.

    Counting output records is not enough after crashes and rebalances: resent
    duplicates reach any expected count before the last originals come.
    """

    def lags() -> int:
        try:
            measured = asyncio.run(_measure_groups(settings))
        except KafkaError:  # e.g. no group coordinator yet on a fresh broker
            return -1
        if any(not rows for _, rows in measured):
            return -1
        return sum(row.lag for _, rows in measured for row in rows)

    deadline = time.monotonic() + timeout
    since: float | None = None
    while time.monotonic() < deadline:
        if lags() == 0:
            since = since or time.monotonic()
            if time.monotonic() - since >= steady:
                return True
        else:
            since = None
        time.sleep(0.5)
    return False


@dataclass
class Comparison:
    """One worker's answer to some events beside the backtest's (``through_the_broker``)."""

    outputs: dict[str, list[Any]]
    """Each output topic's records per key, in offset order: ``"topic|key" -> values``."""
    expected_outputs: dict[str, list[Any]]
    records: dict[str, Any]
    """The customer records the worker stored, read back from the changelog."""
    expected_records: dict[str, Any]
    returncode: int | None
    """The worker's exit status after its clean stop."""
    backtest_seconds: float
    worker_seconds: float
    log: str


def through_the_broker(
    settings: Settings, events: list[dict[str, Any]], log_path: Path, *, timeout: float = 900
) -> Comparison:
    """Backtest ``events``, publish them, run one worker until every expected output
    has come, stop it with SIGTERM and read back what it stored."""
    started = time.perf_counter()
    runner, outputs = backtest(settings, events)
    expected: dict[str, list[Any]] = {}
    for item in outputs:
        expected.setdefault(f"{item.topic}|{item.key}", []).append(to_jsonable(item.value))
    backtest_seconds = time.perf_counter() - started
    assert publish(settings, events) == len(events)
    worker = Worker(settings, log_path).start()
    started = time.perf_counter()
    try:
        total = sum(len(v) for v in expected.values())
        records = collect(settings, OUTPUTS, expected=total, timeout=timeout)
        worker_seconds = time.perf_counter() - started
        worker.assert_alive()
    finally:
        worker.stop()
    logical = {settings.topic(n): n for n in OUTPUTS}
    got: dict[str, list[Any]] = {}
    for r in sorted(records, key=lambda r: (r["topic"], r["partition"], r["offset"])):
        got.setdefault(f"{logical[r['topic']]}|{r['key']}", []).append(r["value"])
    return Comparison(
        outputs=got,
        expected_outputs=expected,
        records=stored_states(settings, timeout=300),
        expected_records={k: to_jsonable(s) for k, s in runner.states.items()},
        returncode=worker.process.returncode if worker.process else None,
        backtest_seconds=backtest_seconds,
        worker_seconds=worker_seconds,
        log=worker.log_text(),
    )
