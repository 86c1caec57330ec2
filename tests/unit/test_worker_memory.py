"""The worker hands the C heap's freed pages back after a recovery (``release_freed_memory``)."""

from __future__ import annotations

import os
import platform

import pytest

from agents.worker import release_freed_memory
from bench.measure import rss_bytes

MiB = 1024**2


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_pages_stop_being_resident() -> None:
    chunks = [bytes(2048) for _ in range(100_000)]  # 200 MiB from malloc, not pymalloc
    later = bytes(2048)  # allocated above them: free() alone cannot shrink the heap
    del chunks
    freed = rss_bytes(os.getpid())
    release_freed_memory()
    assert freed - rss_bytes(os.getpid()) > 100 * MiB
    assert len(later) == 2048
