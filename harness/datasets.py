"""Real data nobody here wrote: the CDNOW transactions, from the Lifetimes wheel.

CDNOW (an online music retailer, 1997-1998) is the data set of the BG/NBD and
Gamma-Gamma papers. The Lifetimes package on PyPI ships it; the wheel is
downloaded once (no dependencies, hash-checked), cached, and only read as a
zip: the package itself is never installed or imported.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CDNOW_END_OF_CALIBRATION", "cdnow_events", "cdnow_file"]

WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
WHEEL_SHA256 = "261e3dc89977c2b60767ca6728aaa29d429de0c814635070a749c36555895da8"
CACHE = Path.home() / ".cache" / "lifecycle" / "datasets"

CDNOW_END_OF_CALIBRATION = datetime(1997, 9, 30, tzinfo=UTC)
"""The papers' 39-week calibration period ends here (1997-01-01 + 272 days)."""


def _wheel() -> Path:
    path = CACHE / WHEEL
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--dest", str(CACHE), "lifetimes==0.11.3"],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        path.unlink()
        msg = f"{WHEEL} has sha256 {digest}, expected {WHEEL_SHA256}"
        raise RuntimeError(msg)
    return path


def cdnow_file(name: str) -> list[str]:
    """The lines of lifetimes/datasets/<name> (CDNOW_sample.txt, CDNOW_master.txt, ...)."""
    with zipfile.ZipFile(_wheel()) as wheel:
        return wheel.read(f"lifetimes/datasets/{name}").decode("ascii").splitlines()


def cdnow_events(name: str = "CDNOW_sample.txt") -> list[dict[str, Any]]:
    """Each CDNOW row as a purchase event, in file order.

    The sample's rows are ``master_id sample_id yyyymmdd cds dollars`` (customers
    are numbered by the sample id, as in the papers); the master's are
    ``id yyyymmdd cds dollars`` after a header.
    """
    events: list[dict[str, Any]] = []
    for n, line in enumerate(cdnow_file(name)):
        fields = line.split()
        if not fields or not fields[-1].replace(".", "", 1).isdigit():
            continue  # the master file's header
        customer, day, cds, dollars = (fields[1], *fields[2:]) if len(fields) == 5 else fields
        at = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        events.append(
            {
                "event_id": f"cdnow-{n}",
                "type": "purchase",
                "occurred_at": at.isoformat().replace("+00:00", "Z"),
                "customer_id": f"cdnow-{int(customer)}",
                "order_id": f"cdnow-{n}",
                "total": dollars,
                "currency": "USD",
                "items": [{"product_id": "cd", "quantity": int(cds), "unit_price": "0"}]
                if int(cds) > 0
                else [],
            }
        )
    return events
