"""A worker's local table stores: trusted only after a clean stop (``start_clean``), and
scanned whole without filling their block caches (``scan_uncached``)."""

from __future__ import annotations

from pathlib import Path

from faust.stores.rocksdb import Store

from agents.worker import CLEAN_MARK, start_clean
from streams.faust_compat import scan_uncached

OFFSET_KEY = Store.offset_key  # Faust keeps each store's changelog offset among the records


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


def test_the_timer_rebuild_scan_reads_every_record_without_filling_the_block_cache(
    tmp_path: Path,
) -> None:
    import rocksdict

    cache = rocksdict.Cache(64 * 1024**2)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(cache)
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_block_based_table_factory(table)
    db = rocksdict.Rdict(str(tmp_path / "customers-0.db"), options=options)
    try:
        records = {f"cust-{i}".encode(): bytes([i % 256]) * 1000 for i in range(2000)}
        for key, value in records.items():
            db[key] = value
        db[OFFSET_KEY] = b"1999"
        db.flush()  # into an SST file, which is what the block cache holds blocks of

        assert dict(scan_uncached(db, OFFSET_KEY)) == records
        assert cache.get_usage() < 64 * 1024  # index blocks at most: no data block

        assert dict(db.items()) == {**records, OFFSET_KEY: b"1999"}  # a plain scan fills it
        assert cache.get_usage() > 1024**2
    finally:
        db.close()
