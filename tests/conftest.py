"""Hooks for the whole suite."""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from _pytest._code.code import ExceptionInfo

from tests.tracebacks import repair


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[Any]:
    """A failure whose traceback lacks line numbers (a timeout raised by a signal)
    is reported as a failure, not as an INTERNALERROR that ends the run."""
    if call.excinfo is not None and repair(call.excinfo.value):
        call.excinfo = ExceptionInfo.from_exception(call.excinfo.value)
    return (yield)


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    """A test that runs the backtest's command or benchmark in this process leaves the
    cycle collector as it found it (``streams.collector``: frozen objects, thresholds),
    so the tests after it run under CPython's defaults."""
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    yield
    if gc.get_freeze_count() != frozen:
        gc.unfreeze()
    gc.set_threshold(*thresholds)
