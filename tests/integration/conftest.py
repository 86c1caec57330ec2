"""Integration tests run against a real Kafka broker, never a mock.

A test becomes an integration test by living in this directory (it is marked
``integration`` here, so ``pytest -m "not integration"`` skips them) and by
asking for ``kafka_bootstrap``. One broker serves the whole session: either
the one named by ``LIFECYCLE_TEST_BROKER=host:port`` (e.g. in CI with a Kafka
service), or a throwaway ``LocalBroker`` on a free port whose home lives in
the session's tmp dir, so it never touches a developer's own broker or data.
Tests share that broker, so each one uses its own topic names and groups.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from streams.broker import BrokerError, LocalBroker, find_free_port
from tests.integration.mail import Inbox

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration, including ones other modules add later."""
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Kafka for this test session."""
    external = os.environ.get("LIFECYCLE_TEST_BROKER", "").strip()
    if external:
        yield external
        return
    broker = LocalBroker(port=find_free_port(), home=tmp_path_factory.mktemp("kafka"))
    try:
        status = broker.start()
    except BrokerError as exc:
        pytest.fail(
            f"{exc}\n\nTo run integration tests against an existing broker instead, set "
            "LIFECYCLE_TEST_BROKER=host:port; to skip them: pytest -m 'not integration'.",
            pytrace=False,
        )
    try:
        yield status.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = find_free_port(1)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
