"""Hooks for the whole suite."""

from __future__ import annotations

from collections.abc import Generator
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
