"""Tracebacks pytest can always print.

On Python 3.11 an exception raised by a signal handler (pytest-timeout's
signal method) can land on an instruction that has no line number; its
traceback entry then says ``tb_lineno is None`` and pytest, formatting the
failure, crashes the whole run with an INTERNALERROR instead of reporting one
failed test. ``repair`` gives such entries their frame's line (or the first
line of its code), so a timeout reads as a normal failure with its stack.
"""

from __future__ import annotations

from types import TracebackType

__all__ = ["repair", "with_line_numbers"]


def with_line_numbers(tb: TracebackType | None) -> TracebackType | None:
    """The same chain of frames, every entry with a line number."""
    entries: list[TracebackType] = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if all(entry.tb_lineno is not None for entry in entries):
        return entries[0] if entries else None
    fixed: TracebackType | None = None
    for entry in reversed(entries):
        frame = entry.tb_frame
        line = entry.tb_lineno or frame.f_lineno or frame.f_code.co_firstlineno
        fixed = TracebackType(fixed, frame, entry.tb_lasti, line)
    return fixed


def repair(exc: BaseException) -> bool:
    """Give every traceback of ``exc`` and of the exceptions chained to it line numbers;
    whether any needed it."""
    changed = False
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        fixed = with_line_numbers(tb)
        if fixed is not tb:
            current.__traceback__ = fixed
            changed = True
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
    return changed
