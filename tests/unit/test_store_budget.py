"""A worker's RocksDB databases share one block cache and one memtable budget
(``streams.faust_compat.BudgetStore``), so its memory does not grow with the
partitions it holds. Real RocksDB databases on disk; no broker."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.app import ROCKSDB_OPTIONS, create_app
from streams.faust_compat import BudgetStore, partition_stores
from streams.settings import Settings

PARTITIONS = 6
MEMTABLES = "rocksdb.cur-size-all-mem-tables"


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[tuple[list[Any], list[Any]]]:
    """The worker's two tables' stores and each partition's database of both, as a
    worker opens them; closed after the test."""
    topology = create_app(
        Settings(store="rocksdb", data_dir=tmp_path, partitions=PARTITIONS, topic_prefix="u.")
    )
    stores = [topology.customers.data, topology.copurchase.data]
    databases = []
    for store in stores:
        assert isinstance(store, BudgetStore)
        databases += [store._db_for_partition(p) for p in range(PARTITIONS)]  # noqa: SLF001
    yield stores, databases
    for db in databases:
        db.close()


def _memtables(databases: list[Any]) -> int:
    return sum(db.property_int_value(MEMTABLES) for db in databases)


def test_every_database_of_a_worker_draws_on_one_memtable_budget(
    opened: tuple[list[Any], list[Any]],
) -> None:
    _, databases = opened
    budget = ROCKSDB_OPTIONS["budget_write_buffers"]
    own = ROCKSDB_OPTIONS["write_buffer_size"] * ROCKSDB_OPTIONS["max_write_buffer_number"]
    assert len(databases) * own >= 4 * budget  # what the databases could hold alone
    for round_ in range(7):  # about 0.6 MiB into each of the twelve: 7 MiB in all
        for n, db in enumerate(databases):
            for i in range(20):
                db[f"cust-{n}-{round_}-{i}".encode()] = os.urandom(4096)
    # Alone, each database would keep all of it: its own memtable (1 MiB) never fills.
    # The budget's flushes run in RocksDB's background threads, and RocksDB decides on
    # one only when a database is written, so a slow machine ends the loop above with
    # flushes still owed. A worker goes on writing; here one small write to each
    # database per turn lets the budget act, and is too small to fill a memtable.
    deadline = time.monotonic() + 60
    while _memtables(databases) > 1.25 * budget and time.monotonic() < deadline:
        for db in databases:
            db[b"settle"] = b"x"
        time.sleep(0.05)
    assert _memtables(databases) <= 1.25 * budget, f"{_memtables(databases):,} B"
    for n, db in enumerate(databases):  # nothing written is lost to the flushes
        assert len(db[f"cust-{n}-0-0".encode()]) == 4096


def test_every_database_of_a_worker_reads_through_one_block_cache(
    opened: tuple[list[Any], list[Any]],
) -> None:
    stores, databases = opened
    first, second = databases[0], databases[1]
    for db in (first, second):
        for i in range(500):
            db[f"cust-{i}".encode()] = os.urandom(2048)
        db.flush()  # into an SST file, whose blocks a read brings into the cache
    cache = stores[0].rocksdb_options.shared_cache()
    before = cache.get_usage()
    for i in range(500):
        first[f"cust-{i}".encode()]
    after_first = cache.get_usage()
    for i in range(500):
        second[f"cust-{i}".encode()]
    after_second = cache.get_usage()
    assert before < after_first < after_second  # the second database's blocks join
    assert after_second <= ROCKSDB_OPTIONS["block_cache_size"]


def test_the_partition_databases_are_still_found(opened: tuple[list[Any], list[Any]]) -> None:
    """The agent reads a partition's database directly (``partition_stores``)."""
    stores, _ = opened
    found = partition_stores(stores[0])
    assert found is not None
    assert sorted(found) == list(range(PARTITIONS))
