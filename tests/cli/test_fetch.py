"""`vaseg fetch NAME`, with the Modal Volume replaced by a local folder at the client boundary."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

modal = pytest.importorskip("modal")

from visionassist_seg.cli.app import app  # noqa: E402
from visionassist_seg.remote import dispatch  # noqa: E402


class FolderVolume:
    """The two read calls `vaseg fetch` makes on a `modal.Volume`, served from a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def hydrate(self):
        return self

    def listdir(self, key, recursive=False):
        from modal.exception import NotFoundError
        from modal.volume import FileEntry, FileEntryType

        if not (self.root / key).exists():
            raise NotFoundError(key)
        return [
            FileEntry(path=p.relative_to(self.root).as_posix(),
                      type=FileEntryType.FILE if p.is_file() else FileEntryType.DIRECTORY, mtime=0, size=0)
            for p in sorted((self.root / key).rglob("*"))
        ]

    def read_file(self, key):
        from modal.exception import NotFoundError

        if not (self.root / key).is_file():
            raise NotFoundError(key)
        yield (self.root / key).read_bytes()


@pytest.fixture
def volume(tmp_path, monkeypatch):
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dispatch, "check_modal_reachable", lambda: None)  # no Modal server in tests
    fake = FolderVolume(tmp_path / "volume")
    looked_up = []
    monkeypatch.setattr(modal.Volume, "from_name", lambda name, **kw: looked_up.append(name) or fake)
    fake.looked_up = looked_up
    return fake


def _put(volume: FolderVolume, key: str, data: bytes) -> None:
    (volume.root / key).parent.mkdir(parents=True, exist_ok=True)
    (volume.root / key).write_bytes(data)


def test_fetch_copies_finished_run_to_default_folder(volume, tmp_path):
    _put(volume, "runs/exp1/best.onnx", b"onnx")
    _put(volume, "runs/exp1/plots/iou.png", b"png")
    _put(volume, "runs/exp1/remote.json", b'{"status": "finished"}')
    result = CliRunner().invoke(app, ["fetch", "exp1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "exp1" / "best.onnx").read_bytes() == b"onnx"
    assert (tmp_path / "runs" / "exp1" / "plots" / "iou.png").read_bytes() == b"png"
    assert "3 files, status finished" in result.output
    assert volume.looked_up == ["vaseg-data"]


def test_fetch_running_run_warns_and_uses_output_dir(volume, tmp_path, monkeypatch):
    monkeypatch.setenv("VASEG_MODAL_VOLUME", "other-volume")
    _put(volume, "runs/exp2/last.pt", b"ckpt")
    _put(volume, "runs/exp2/remote.json", b'{"status": "running"}')
    result = CliRunner().invoke(app, ["fetch", "exp2", "-o", str(tmp_path / "here")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here" / "last.pt").read_bytes() == b"ckpt"
    assert "still running" in result.output
    assert volume.looked_up == ["other-volume"]


def test_fetch_unknown_run_exits_1(volume):
    result = CliRunner().invoke(app, ["fetch", "missing"])
    assert result.exit_code == 1
    assert "No run 'missing'" in result.output and "modal volume ls" in result.output


def test_fetch_without_credentials_exits_1(tmp_path, monkeypatch):
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "none.toml"))
    result = CliRunner().invoke(app, ["fetch", "exp1"])
    assert result.exit_code == 1
    assert "modal setup" in result.output


def test_fetch_with_modal_unreachable_exits_1_with_one_paragraph(tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:  # free a moment ago: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    monkeypatch.setenv("MODAL_SERVER_URL", url)
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["fetch", "exp1"])
    assert result.exit_code == 1
    assert f"Cannot reach the Modal server at {url}" in result.output and "Traceback" not in result.output
    assert "as-test" not in result.output


def test_fetch_from_a_missing_volume_exits_1_naming_it(volume, monkeypatch):
    from modal.exception import NotFoundError

    class MissingVolume:
        def hydrate(self):
            raise NotFoundError("Volume 'vaseg-data' not found in environment 'main'")

    monkeypatch.setattr(modal.Volume, "from_name", lambda name, **kw: MissingVolume())
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["fetch", "exp1"])
    assert result.exit_code == 1
    assert "Modal Volume 'vaseg-data' does not exist" in result.output and "secret" not in result.output.lower()


def test_fetch_accepts_an_oauth_login(volume, monkeypatch):
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(volume.root.parent / "none.toml"))
    monkeypatch.setenv("MODAL_OAUTH_REFRESH_TOKEN", "rt-test")
    monkeypatch.setenv("MODAL_OAUTH_CLIENT_ID", "cid-test")
    monkeypatch.setenv("MODAL_OAUTH_JWT_KEY", "jwt-test")
    _put(volume, "runs/exp3/best.onnx", b"onnx")
    result = CliRunner().invoke(app, ["fetch", "exp3"])
    assert result.exit_code == 0, result.output


def test_fetch_shows_a_remote_error_with_brackets_as_written(volume):
    _put(volume, "runs/exp4/remote.json", b'{"status": "failed", "error": "KeyError: [bold]x[/bold]"}')
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["fetch", "exp4"])
    assert result.exit_code == 0, result.output
    assert "KeyError: [bold]x[/bold]" in result.output
