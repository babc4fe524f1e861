"""Real precompute processes: workers die with their parent (kill -9), Ctrl-C is exit 130 in one line.

Each test starts its own processes, bounds every wait, and kills whatever it started
that is still alive when it ends. The workers are paused (SIGSTOP) while the parent is
signalled, so that the run cannot finish first however fast the machine is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the worker processes")

WAIT_S = 60


def _children(pid: int) -> dict[int, str]:
    """Return {pid: command line} of the live processes whose parent is ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry)] = cmdline
    return found


def _alive(pid: int) -> bool:
    """Return True while ``pid`` runs (a zombie, dead but not yet reaped by its adopter, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_workers(parent: subprocess.Popen, count: int) -> list[int]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and parent.poll() is None:
        workers = [pid for pid, cmd in _children(parent.pid).items() if "spawn_main" in cmd]
        if len(workers) == count:
            return workers
        time.sleep(0.02)
    raise AssertionError(f"{count} workers never started (exit code {parent.poll()})")


def _wait_until_sigint_handled(pid: int) -> None:
    """Wait until ``pid`` no longer ignores SIGINT (precompute ignores it while it starts its workers)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
        if not ignored & (1 << (signal.SIGINT - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} kept ignoring SIGINT")


def _wait_until_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _command(raw_dir: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "visionassist_seg", "precompute", "--skip-download", "--no-push", "--raw-dir", str(raw_dir),
        "--output-dir", str(output), "--workers", "2", "--shard-size", "1",
    ]  # fmt: skip


def test_kill_9_of_precompute_leaves_no_worker_or_resource_tracker(raw_dir, tmp_path):
    parent = subprocess.Popen(_command(raw_dir, tmp_path / "out"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: list[int] = []
    try:
        workers = _wait_for_workers(parent, 2)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        started = list(_children(parent.pid))  # the workers and multiprocessing's resource tracker
        assert any("resource_tracker" in cmd for cmd in _children(parent.pid).values())
        parent.kill()
        parent.wait(timeout=WAIT_S)
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
        assert _wait_until_gone(started) == [], "processes outlived their killed parent"
    finally:
        parent.kill()
        _kill_all(started)


def test_ctrl_c_stops_precompute_with_exit_130_one_line_and_no_worker_traceback(raw_dir, tmp_path):
    parent = subprocess.Popen(
        _command(raw_dir, tmp_path / "out"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    started: list[int] = []
    try:
        workers = _wait_for_workers(parent, 2)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        started = list(_children(parent.pid))
        _wait_until_sigint_handled(parent.pid)
        os.killpg(parent.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
        stdout, stderr = parent.communicate(timeout=WAIT_S)
        assert parent.returncode == 130, stderr
        output = stdout + stderr
        assert "Traceback" not in output and "KeyboardInterrupt" not in output
        interrupted = [line for line in output.splitlines() if "Interrupted" in line]
        assert len(interrupted) == 1 and "rerun the same command to resume" in interrupted[0]
        assert _wait_until_gone(started) == []
    finally:
        parent.kill()
        _kill_all(started)


WATCHED = """
import os, sys, time
from visionassist_seg import process_pool
process_pool.sys.platform = "darwin"  # no prctl: only the portable getppid watch is armed
process_pool.exit_with_parent(os.getppid())
print("armed", flush=True)
time.sleep(60)
"""
MIDDLE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == "armed"
print(child.pid, flush=True)
time.sleep(60)
"""


def test_portable_parent_watch_ends_a_worker_whose_parent_died(tmp_path):
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, WATCHED], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(middle.stdout.readline())
        assert _alive(child)
        middle.kill()
        middle.wait(timeout=WAIT_S)
        assert _wait_until_gone([child]) == []
    finally:
        middle.kill()
        if child is not None:
            _kill_all([child])
