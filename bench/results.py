"""How a benchmark adds its row to its own table in bench/RESULTS.md.

Each benchmark has a section of its own, and later sections (write-ups, other
benchmarks) follow it, so a row goes under the last row of that section's table,
never at the end of the file.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_row", "with_row"]


def with_row(text: str, line: str, section: str, header: str) -> str:
    """``text`` with ``line`` after the last row of ``section``'s table: the section's last
    table whose header starts with ``header``'s first four columns (an older table of the
    same benchmark may have other columns after those)."""
    first = " |".join(header.split(" |")[:4])  # "| date | commit | machine | events"
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    end = len(text) if end < 0 else end + 1
    lines = text[start:end].rstrip("\n").split("\n")
    top = max(i for i, row in enumerate(lines) if row.startswith(first))
    last = top
    while last + 1 < len(lines) and lines[last + 1].startswith("|"):
        last += 1
    lines.insert(last + 1, line.rstrip("\n"))
    rest = text[end:]
    return text[:start] + "\n".join(lines) + ("\n\n" + rest if rest else "\n")


def add_row(path: Path, line: str, section: str, header: str, command: str) -> None:
    """Add ``line`` to ``section``'s table in ``path``; a file or a section not there yet
    is begun, with the ``command`` that writes its rows and the table's ``header``."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if section not in text:
        text = text.rstrip("\n") + f"\n\n{section}\n\nCommand: {command}\n\n" + header
    path.write_text(with_row(text, line, section, header))
