import subprocess
import sys

import pytest

from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import LOCK_FILE, folder_lock

HOLD = """
import sys, time
from pathlib import Path
from visionassist_seg.folder_lock import folder_lock
with folder_lock(Path(sys.argv[1]), "holder test"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_folder_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with folder_lock(tmp_path / "out", "precompute"):
        with pytest.raises(VasegError, match=r"Another vaseg run \(precompute, process \d+\) is using"):
            with folder_lock(tmp_path / "out", "precompute"):
                pass
    with folder_lock(tmp_path / "out", "training"):  # released after the first block
        pass
    assert (tmp_path / "out" / LOCK_FILE).exists()


def test_folder_lock_is_released_when_the_holder_is_killed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(VasegError, match="holder test"):
            with folder_lock(tmp_path, "second"):
                pass
    finally:
        proc.kill()
        proc.wait()
    with folder_lock(tmp_path, "after kill -9"):
        pass


def test_folder_lock_goes_on_unlocked_where_the_filesystem_has_no_locks(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with folder_lock(tmp_path / "volume-run", "training") as lock:
        assert lock.read_text().startswith("training, process")
