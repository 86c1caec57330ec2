"""A traceback entry without a line number no longer crashes pytest's report."""

from __future__ import annotations

import inspect
from types import FrameType, TracebackType

import pytest
from _pytest._code.code import ExceptionInfo

from tests.tracebacks import repair


def a_frame() -> FrameType:
    try:
        frame = inspect.currentframe()
    finally:
        pass
    assert frame is not None
    for _ in range(1):
        pass
    return frame


def lineless_traceback() -> TracebackType:
    """A traceback entry on an instruction with no line number, as a signal can leave."""
    frame = a_frame()
    positions = list(frame.f_code.co_positions())
    unit = next(i for i, (line, *_) in enumerate(positions) if line is None)
    tb = TracebackType(None, frame, unit * 2, -1)
    assert tb.tb_lineno is None
    return tb


def test_pytest_cannot_format_a_lineless_traceback() -> None:
    exc = RuntimeError("timeout")
    with pytest.raises(TypeError):
        ExceptionInfo.from_exc_info((RuntimeError, exc, lineless_traceback())).getrepr()


def test_a_repaired_traceback_formats_with_its_frame() -> None:
    cause = ValueError("first")
    cause.__traceback__ = lineless_traceback()
    exc = RuntimeError("timeout")
    exc.__traceback__ = lineless_traceback()
    exc.__context__ = cause
    assert repair(exc)
    assert exc.__traceback__ is not None
    assert exc.__traceback__.tb_lineno >= a_frame.__code__.co_firstlineno
    assert cause.__traceback__ is not None
    assert cause.__traceback__.tb_lineno is not None
    text = str(ExceptionInfo.from_exception(exc).getrepr())
    assert "a_frame" in text
    assert "RuntimeError: timeout" in text


def test_a_whole_traceback_is_left_as_it_is() -> None:
    try:
        msg = "plain"
        raise RuntimeError(msg)
    except RuntimeError as caught:
        exc = caught
    tb = exc.__traceback__
    assert not repair(exc)
    assert exc.__traceback__ is tb
