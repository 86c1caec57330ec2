"""A worker trusts its local table stores only after a clean stop (``start_clean``)."""

from __future__ import annotations

from pathlib import Path

from agents.worker import CLEAN_MARK, start_clean


def test_tables_left_by_a_killed_worker_are_dropped(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    (tables / "customers-0.db").mkdir(parents=True)
    start_clean(tables)
    assert not tables.exists()


def test_tables_left_by_a_clean_stop_are_kept_and_the_mark_is_spent(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    (tables / "customers-0.db").mkdir(parents=True)
    (tables / CLEAN_MARK).touch()
    start_clean(tables)
    assert (tables / "customers-0.db").is_dir()
    assert not (tables / CLEAN_MARK).exists()  # a kill during this run leaves none


def test_a_first_start_has_nothing_to_drop(tmp_path: Path) -> None:
    start_clean(tmp_path / "tables")
    assert not (tmp_path / "tables").exists()
