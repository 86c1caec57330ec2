"""``make dev 2>&1 | tee dev.log`` ended the ways a terminal ends it: nothing it started stays.

The command (``make dev``, as the README says, or ``lifecycle dev`` itself)
runs under ``sh -c`` in a session of its own, so the shell, make, the
command and ``tee`` share one process group, as a pipeline in a terminal does.
Ctrl-C, a closed terminal and ``kill`` reach that whole group (``tee`` dies
with it, so the command's later writes fail); ``tee`` killed alone leaves the
command writing into a dead pipe. Each time, every process that carries this
test's directory in its command line or environment (the command, its
worker, its broker, the shell, ``tee``) must be gone, and the ports free.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.broker import broker_ready, find_free_port

ROOT = Path(__file__).resolve().parents[2]
UP_TIMEOUT = 240.0  # a broker start, a worker start and the first transitions
GONE_TIMEOUT = 180.0  # the worker's and the broker's clean stops, SIGKILL after 30 s each


def dev_env(tmp_path: Path) -> tuple[dict[str, str], list[int]]:
    """The user's environment without LIFECYCLE_* settings, on free ports, homed in tmp_path."""
    kafka_port, web_port = find_free_port(), find_free_port(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env |= {
        "LIFECYCLE_KAFKA_PORT": str(kafka_port),
        "LIFECYCLE_KAFKA_DIR": str(tmp_path / "kafka"),
        "LIFECYCLE_WEB_PORT": str(web_port),
    }
    return env, [kafka_port, kafka_port + 1, web_port]


def start_pipeline(
    tmp_path: Path, env: dict[str, str], *args: str, make: bool = False
) -> subprocess.Popen[bytes]:
    """``COMMAND 2>&1 | tee dev.log``; with ``make``, COMMAND is the README's ``make dev``."""
    if make:
        command = shlex.join(["make", "--no-print-directory", "dev", f"ARGS={shlex.join(args)}"])
        # A terminal's make, not one nested in the make that runs the tests.
        env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    else:
        command = shlex.join([sys.executable, "-m", "cli", "dev", *args])
    log = shlex.quote(str(tmp_path / "dev.log"))
    return subprocess.Popen(
        ["/bin/sh", "-c", f"{command} 2>&1 | tee {log}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal gives a pipeline
    )


def processes_mentioning(marker: str) -> dict[int, str]:
    """Live processes (zombies excluded) whose command line or environment holds ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _state(entry) == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in cmdline or marker in environ:
            found[int(entry.name)] = cmdline
    return found


def _state(proc: Path) -> str:
    return (proc / "stat").read_text().rpartition(")")[2].split()[0]


def _group(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[2])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(check: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def flowing(log: Path) -> bool:
    """A count line with transitions: broker, topics, worker and shop all run."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return re.search(r"events [1-9]\d*\s+transitions [1-9]", text) is not None


@pytest.mark.parametrize(
    ("make", "target", "sig"),
    [
        (True, "group", signal.SIGINT),  # Ctrl-C
        (True, "tee", signal.SIGKILL),  # only the reader dies: a dead pipe
        (False, "group", signal.SIGINT),
        (False, "group", signal.SIGHUP),  # the terminal closed
        (False, "group", signal.SIGTERM),  # kill -TERM -PGID, a service manager
        (False, "tee", signal.SIGKILL),
    ],
    ids=[
        "make-ctrl-c",
        "make-dead-pipe",
        "ctrl-c",
        "hangup",
        "terminate",
        "dead-pipe",
    ],
)
def test_dev_through_tee_leaves_nothing_running(
    tmp_path: Path, make: bool, target: str, sig: signal.Signals
) -> None:
    env, ports = dev_env(tmp_path)
    marker = str(tmp_path)
    log = tmp_path / "dev.log"
    shell = start_pipeline(tmp_path, env, "--customers", "2000", "--rate", "200", make=make)
    try:
        assert wait_until(lambda: flowing(log), UP_TIMEOUT), log.read_text(errors="replace")
        text = log.read_text(errors="replace")
        broker_pid = int((tmp_path / "kafka" / "broker.pid").read_text())
        match = re.search(r"worker pid (\d+)", text)
        assert match, text
        worker_pid = int(match.group(1))
        running = processes_mentioning(marker)
        assert {broker_pid, worker_pid, shell.pid} <= running.keys(), running
        group = {pid for pid in running if _group(pid) == shell.pid}
        tees = [pid for pid in group if running[pid].startswith("tee ")]
        assert len(tees) == 1, running
        assert broker_pid not in group  # their own sessions: only the command stops them
        assert worker_pid not in group
        if target == "group":
            os.killpg(shell.pid, sig)
        else:
            os.kill(tees[0], sig)
        gone = wait_until(lambda: not processes_mentioning(marker), GONE_TIMEOUT)
        assert gone, f"left running: {processes_mentioning(marker)}"
        shell.wait(timeout=30)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
        for pid in processes_mentioning(marker):  # a failed run must not leak into the next
            os.kill(pid, signal.SIGKILL)
    assert all(port_free(port) for port in ports), ports
    assert not broker_ready(f"127.0.0.1:{ports[0]}", timeout=1.0)
    assert "fresh start" in text
    assert "NotLeader" not in text


def test_dev_says_it_resumes_the_data_of_an_earlier_run(tmp_path: Path) -> None:
    env, _ports = dev_env(tmp_path)
    log = tmp_path / "dev.log"
    shell = start_pipeline(tmp_path, env, "--customers", "300", "--rate", "200")
    try:
        assert wait_until(lambda: flowing(log), UP_TIMEOUT), log.read_text(errors="replace")
        os.killpg(shell.pid, signal.SIGINT)
        shell.wait(timeout=60)
        assert wait_until(lambda: not processes_mentioning(str(tmp_path)), GONE_TIMEOUT)
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
    first = log.read_text(errors="replace")
    again = subprocess.run(
        [sys.executable, "-m", "cli", "dev", "--customers", "50", "--duration", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    second = again.stdout + again.stderr
    assert again.returncode == 0, second
    assert "broker stopped" in second
    assert "fresh start: new topics, no worker state" in first
    assert "resuming" not in first
    assert re.search(r"resuming: (\d+) of \1 topics exist", second), second
    assert f"worker state in {tmp_path / 'dev' / 'worker'}" in second
    assert "fresh start" not in second
    assert "NotLeader" not in first + second
