"""The suite's shared fixtures, registered for every test by the root ``conftest.py``.

A module that needs another playbook declares its own ``playbook`` fixture, which
overrides this one there (``tests/unit/test_lift.py``).
"""

from __future__ import annotations

import pytest

from lifecycle.playbook import Playbook, default_playbook
from tests.scenarios.journeys import JOURNEYS
from tests.scenarios.model import Journey


@pytest.fixture(scope="module")
def playbook() -> Playbook:
    """The default playbook (docs/campaigns.md), one per test module."""
    return default_playbook()


@pytest.fixture(scope="session")
def journeys() -> dict[str, Journey]:
    """Every named journey (``tests.scenarios.JOURNEYS``), by name, in their order."""
    return {journey.name: journey for journey in JOURNEYS}
