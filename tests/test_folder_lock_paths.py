"""folder_lock on folders that cannot be created: one paragraph naming the path and the OS reason."""

from __future__ import annotations

import pytest

from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import folder_lock, make_folder


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("a_file/run", "Not a directory; part of the path is a regular file, not a folder"),
        ("a_file", "File exists; a regular file already has that name"),
        ("x" * 300, "File name too long; a name in the path is longer than the file system allows"),
    ],
)
def test_folder_lock_unusable_folder_is_one_paragraph(tmp_path, relative, reason):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(VasegError) as caught:
        with folder_lock(tmp_path / relative, "training"):
            pass
    assert caught.value.message.startswith(f"Cannot use the folder {tmp_path / relative}: {reason}")
    assert "\n" not in caught.value.message


def test_make_folder_under_proc_names_the_path(tmp_path):
    with pytest.raises(VasegError, match=r"Cannot use the folder /proc/vaseg-test/run: No such file or directory"):
        make_folder("/proc/vaseg-test/run")


def test_folder_lock_read_only_folder_names_the_reason(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write into read-only folders")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(VasegError, match="Permission denied; you have no permission to write there"):
            with folder_lock(folder, "training"):
                pass
    finally:
        folder.chmod(0o700)
