"""``lifecycle dev`` as a user runs it: stages move soon after start, the demo playbook's
flows send (and the built-in cart mail they replace does not), Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.broker import broker_ready, find_free_port

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 240
"""Seconds from start to a first purchase's stage: about 20 here, with room for a machine
several times slower that also fetches nothing."""


def test_dev_shows_stages_moving_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    kafka_port = find_free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env |= {
        "LIFECYCLE_KAFKA_PORT": str(kafka_port),
        "LIFECYCLE_KAFKA_DIR": str(tmp_path / "kafka"),
        "LIFECYCLE_WEB_PORT": str(find_free_port(1)),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev", "--customers", "300", "--rate", "200"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    started = time.monotonic()
    moved = flowed = False
    worker_pid = None
    try:
        for line in process.stdout:
            output.append(line)
            if match := re.search(r"worker pid (\d+)", line):
                worker_pid = int(match.group(1))
            # A customer past the first stage: the whole pipeline is flowing.
            if re.search(r"stages:.*first_time_buyer [1-9]", line):
                moved = True
            # A flow of the demo playbook has sent: its flows run. (Its cart_reminder
            # rarely goes: the shop's carts follow a signup, whose welcome takes the cap.)
            if moved and re.search(r"campaigns:.*replenish_coffee [1-9]", line):
                flowed = True
                break
            if time.monotonic() - started > DEADLINE:
                break
        elapsed = time.monotonic() - started
        assert moved, f"no stage movement within {DEADLINE} s:\n" + "".join(output)
        assert flowed, f"no replenish_coffee within {DEADLINE} s:\n" + "".join(output)
        assert elapsed < DEADLINE
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = process.communicate(timeout=90)
        output.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(output)
    assert process.returncode == 0, text
    assert "playbook_demo.yaml" in text
    assert "cart_abandonment" not in text  # the demo playbook turns the built-in off
    assert "worker stopped" in text
    assert "broker stopped" in text
    assert not broker_ready(f"127.0.0.1:{kafka_port}", timeout=1.0)
    assert worker_pid is not None
    assert not Path(f"/proc/{worker_pid}").exists() or _is_zombie(worker_pid)


def _is_zombie(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" in status
