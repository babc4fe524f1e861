"""Kaggle credentials detection and the OpenEDS download, with kagglehub patched at its entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest.mock import patch

import cv2
import numpy as np
import pytest
from kagglehub import exceptions as kaggle_errors

from visionassist_seg.data.raw import find_data_root, is_complete
from visionassist_seg.data.synthetic import write_synthetic_raw
from visionassist_seg.errors import VasegError
from visionassist_seg.kaggle import download_openeds, ensure_raw, permission_warning, require_credentials
from visionassist_seg.settings import load_settings
from http_stub import Reply, StubServer

USERNAME = "vaseg-tester"
KEY = "k3y-0f-the-tester-5c1e7d2a9b8f4e6c"
DATASET = "soumicksarker/openeds-dataset"


@pytest.fixture
def kaggle_dir(monkeypatch, tmp_path) -> Path:
    """An empty ~/.kaggle in a fresh HOME, no KAGGLE_*/VASEG_* variables, cwd without vaseg.toml."""
    for name in list(os.environ):
        if name.startswith(("KAGGLE_", "VASEG_")) or name == "HF_TOKEN":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    folder = home / ".kaggle"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    import kagglehub.config

    monkeypatch.setattr(kagglehub.config, "_kaggle_credentials", None)  # kagglehub.login() cache
    return folder


@pytest.fixture
def with_key(monkeypatch, kaggle_dir) -> Path:
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    return kaggle_dir


def write_kaggle_json(folder: Path, mode: int, content: dict | str | None = None) -> Path:
    path = folder / "kaggle.json"
    data = content if content is not None else {"username": USERNAME, "key": KEY}
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    path.chmod(mode)
    return path


def write_tiny_tree(root: Path, splits: tuple[str, ...] = ("train", "validation")) -> None:
    """A minimal raw tree under ``root``: one 4x4 image and label per split."""
    for split in splits:
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        cv2.imwrite(str(root / split / "images" / "000000.png"), np.zeros((4, 4), np.uint8))
        np.save(root / split / "labels" / "000000.npy", np.zeros((4, 4), np.int64))


def synthetic_download(handle: str, path: str | None = None, *, force_download: bool = False, output_dir: str | None = None) -> str:
    """Stands in for kagglehub.dataset_download: writes the Kaggle layout into output_dir."""
    write_synthetic_raw(Path(output_dir), 4, seed=0)
    return output_dir


def assert_no_secret(message: str) -> None:
    assert KEY not in message
    assert KEY[:12] not in message


def test_require_credentials_none_lists_the_ways(kaggle_dir):
    with pytest.raises(VasegError) as caught:
        require_credentials()
    message = caught.value.message
    assert caught.value.exit_code == 1
    assert "No Kaggle credentials" in message
    for way in ("kaggle.json", "chmod 600", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "--source synthetic"):
        assert way in message


def test_require_credentials_username_and_key(with_key):
    require_credentials()


def test_require_credentials_username_without_key_is_not_enough(monkeypatch, kaggle_dir):
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    with pytest.raises(VasegError, match="No Kaggle credentials"):
        require_credentials()


def test_require_credentials_api_token(monkeypatch, kaggle_dir):
    monkeypatch.setenv("KAGGLE_API_TOKEN", KEY)
    require_credentials()


def test_require_credentials_access_token_file(kaggle_dir):
    (kaggle_dir / "access_token").write_text(KEY)
    require_credentials()


def test_require_credentials_kaggle_json(kaggle_dir):
    write_kaggle_json(kaggle_dir, 0o600)
    require_credentials()


@pytest.mark.parametrize(
    "content",
    [{"username": USERNAME}, {"key": KEY}, f'{{"username": "{USERNAME}", "key": "{KEY}"'],
    ids=["no_key", "no_username", "broken_json"],
)
def test_require_credentials_unusable_kaggle_json(kaggle_dir, content):
    path = write_kaggle_json(kaggle_dir, 0o600, content)
    with pytest.raises(VasegError, match="unusable") as caught:
        require_credentials()
    assert str(path) in caught.value.message
    assert "KAGGLE_USERNAME" in caught.value.message
    assert_no_secret(caught.value.message)
    assert_no_secret(str(caught.value))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_permission_warning_for_readable_kaggle_json(kaggle_dir, mode):
    path = write_kaggle_json(kaggle_dir, mode)
    warning = permission_warning()
    assert warning is not None
    assert str(path) in warning
    assert "chmod 600" in warning
    assert_no_secret(warning)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_permission_warning_none_for_private_kaggle_json(kaggle_dir, mode):
    write_kaggle_json(kaggle_dir, mode)
    assert permission_warning() is None


def test_permission_warning_none_without_kaggle_json(kaggle_dir):
    assert permission_warning() is None


def test_download_openeds_calls_kagglehub_and_finds_root(with_key, tmp_path):
    raw_dir = tmp_path / "raw"
    settings = load_settings(raw={"dir": raw_dir})
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        root = download_openeds(settings)
    download.assert_called_once()
    assert download.call_args.args == (DATASET,)
    assert download.call_args.kwargs["output_dir"] == str(raw_dir)
    assert not download.call_args.kwargs.get("force_download", False)
    assert root == raw_dir / "openEDS" / "openEDS"
    assert is_complete(raw_dir)


def test_download_openeds_uses_configured_dataset(with_key, tmp_path):
    settings = load_settings(raw={"dir": tmp_path / "raw", "kaggle_dataset": "someone/openeds-copy"})
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        download_openeds(settings)
    assert download.call_args.args == ("someone/openeds-copy",)


def test_download_openeds_flat_layout(with_key, tmp_path):
    raw_dir = tmp_path / "raw"

    def flat_download(handle, path=None, *, force_download=False, output_dir=None):
        write_tiny_tree(Path(output_dir))
        return output_dir

    with patch("kagglehub.dataset_download", side_effect=flat_download):
        assert download_openeds(load_settings(raw={"dir": raw_dir})) == raw_dir


def test_download_openeds_complete_tree_not_fetched_again(kaggle_dir, tmp_path):
    # No credentials needed either: nothing is contacted.
    raw_dir = tmp_path / "raw"
    write_tiny_tree(raw_dir / "openEDS")
    with patch("kagglehub.dataset_download") as download:
        root = download_openeds(load_settings(raw={"dir": raw_dir}))
    download.assert_not_called()
    assert root == raw_dir / "openEDS"


def test_download_openeds_force_fetches_again(with_key, tmp_path):
    raw_dir = tmp_path / "raw"
    write_synthetic_raw(raw_dir, 4, seed=0)
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        root = download_openeds(load_settings(raw={"dir": raw_dir}), force=True)
    download.assert_called_once()
    assert download.call_args.kwargs["output_dir"] == str(raw_dir)
    assert download.call_args.kwargs["force_download"] is True
    assert root == raw_dir / "openEDS" / "openEDS"


def test_download_openeds_incomplete_tree_is_fetched(with_key, tmp_path):
    raw_dir = tmp_path / "raw"
    write_tiny_tree(raw_dir, splits=("train",))  # no validation split
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        download_openeds(load_settings(raw={"dir": raw_dir}))
    download.assert_called_once()


def test_download_openeds_without_credentials_contacts_nothing(kaggle_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download") as download, pytest.raises(VasegError, match="No Kaggle credentials"):
        download_openeds(load_settings(raw={"dir": raw_dir}))
    download.assert_not_called()
    assert not raw_dir.exists()


def test_download_openeds_not_found(with_key, tmp_path):
    settings = load_settings(raw={"dir": tmp_path / "raw", "kaggle_dataset": "nobody/missing"})
    with patch("kagglehub.dataset_download", side_effect=kaggle_errors.NotFoundError("404 Client Error")):
        with pytest.raises(VasegError) as caught:
            download_openeds(settings)
    message = caught.value.message
    assert "nobody/missing" in message
    assert "not found" in message
    assert "soumicksarker/openeds-dataset" in message  # the fix: the expected id
    assert_no_secret(message)


@pytest.mark.parametrize(
    "error",
    [kaggle_errors.UnauthenticatedError(), kaggle_errors.CredentialError("bad credentials")],
    ids=["unauthenticated", "credential"],
)
def test_download_openeds_rejected_credentials(with_key, tmp_path, error):
    with patch("kagglehub.dataset_download", side_effect=error):
        with pytest.raises(VasegError) as caught:
            download_openeds(load_settings(raw={"dir": tmp_path / "raw"}))
    message = caught.value.message
    assert "rejected" in message
    assert type(error).__name__ in message
    assert "KAGGLE_USERNAME" in message
    assert USERNAME not in message
    assert_no_secret(message)


@pytest.mark.parametrize(
    "error",
    [OSError(28, "No space left on device"), kaggle_errors.BackendError("server error", 500)],
    ids=["disk_full", "backend"],
)
def test_download_openeds_transfer_failure(with_key, tmp_path, error):
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download", side_effect=error):
        with pytest.raises(VasegError) as caught:
            download_openeds(load_settings(raw={"dir": raw_dir}))
    message = caught.value.message
    assert str(raw_dir) in message
    assert "--force" in message
    assert_no_secret(message)


def test_download_openeds_empty_download(with_key, tmp_path):
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download", return_value=str(raw_dir)):
        with pytest.raises(VasegError, match="no train/images") as caught:
            download_openeds(load_settings(raw={"dir": raw_dir}))
    assert str(raw_dir) in caught.value.message


def test_ensure_raw_synthetic_writes_kaggle_layout(kaggle_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    settings = load_settings(seed=3, raw={"dir": raw_dir, "source": "synthetic", "synthetic_count": 4})
    with patch("kagglehub.dataset_download") as download:
        root = ensure_raw(settings)
    download.assert_not_called()
    assert root == raw_dir / "openEDS" / "openEDS" == find_data_root(raw_dir)
    counts = {split: len(list((root / split / "images").glob("*.png"))) for split in ("train", "validation", "test")}
    assert counts == {"train": 4, "validation": 1, "test": 1}
    assert len(list((root / "train" / "labels").glob("*.npy"))) == 4
    assert not (root / "test" / "labels").exists()


def test_ensure_raw_synthetic_reuses_complete_tree_unless_forced(kaggle_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    settings = load_settings(raw={"dir": raw_dir, "source": "synthetic", "synthetic_count": 4})
    first = ensure_raw(settings)
    with patch("visionassist_seg.data.synthetic.write_synthetic_raw", side_effect=write_synthetic_raw) as write:
        assert ensure_raw(settings) == first
        write.assert_not_called()
        assert ensure_raw(settings, force=True) == first
        write.assert_called_once_with(raw_dir, 4, 0)


def test_ensure_raw_kaggle_source_downloads(with_key, tmp_path):
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        root = ensure_raw(load_settings(raw={"dir": raw_dir, "source": "kaggle"}))
    download.assert_called_once()
    assert root == raw_dir / "openEDS" / "openEDS"


# --- the real kagglehub client against a scripted local server ------------------------------
# kagglehub 1.0.3 with KAGGLE_API_ENVIRONMENT=TEST sends its API calls to http://localhost:7777
# (kagglesdk.kaggle_env): POST /api/v1/datasets.DatasetApiService/{GetDataset,DownloadDataset}.

GET_DATASET = r"/api/v1/datasets\.DatasetApiService/GetDataset"
DOWNLOAD_DATASET = r"/api/v1/datasets\.DatasetApiService/DownloadDataset"


@pytest.fixture
def kaggle_server(monkeypatch):
    """A StubServer where kagglehub's TEST environment sends its requests."""
    from kagglesdk import kaggle_env


    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    try:
        server = StubServer(port=7777)
    except OSError:  # 7777 taken by another process: the same client, pointed at a free local port
        server = StubServer()
        monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.TEST, server.url)
    with server:
        yield server


def _error(status: int) -> Reply:
    return Reply(status, {"code": status, "message": "scripted error"})


def _zipped_synthetic_tree(tmp_path: Path) -> bytes:
    import io
    import zipfile

    source = tmp_path / "archive-source"
    write_synthetic_raw(source, 4, seed=0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())
    return buffer.getvalue()


def _serve_dataset(server, tmp_path: Path) -> None:
    server.route("POST", GET_DATASET, Reply(200, {"currentVersionNumber": 3}))
    server.route("POST", DOWNLOAD_DATASET, Reply(200, _zipped_synthetic_tree(tmp_path)))


def test_http_download_unpacks_the_archive_into_raw_dir(with_key, kaggle_server, tmp_path):
    _serve_dataset(kaggle_server, tmp_path)
    raw_dir = tmp_path / "raw"
    root = download_openeds(load_settings(raw={"dir": raw_dir, "kaggle_dataset": "someone/eyes"}))
    assert root == raw_dir / "openEDS" / "openEDS" and is_complete(raw_dir)
    asked = kaggle_server.requested("POST", DOWNLOAD_DATASET)
    assert [r.json() for r in asked] == [{"ownerSlug": "someone", "datasetSlug": "eyes", "datasetVersionNumber": 3}]


def test_http_404_names_the_dataset_id_and_how_to_check_it(with_key, kaggle_server, tmp_path):
    kaggle_server.route("POST", GET_DATASET, _error(404))
    with pytest.raises(VasegError) as caught:
        download_openeds(load_settings(raw={"dir": tmp_path / "raw", "kaggle_dataset": "nobody/missing"}))
    message = caught.value.message
    assert "'nobody/missing' was not found (HTTP 404)" in message
    assert "https://www.kaggle.com/datasets/OWNER/NAME" in message and "VASEG_RAW__KAGGLE_DATASET" in message
    assert "network" not in message
    assert_no_secret(message)


def test_http_401_names_the_credentials_in_use(with_key, kaggle_server, tmp_path):
    kaggle_server.route("POST", GET_DATASET, _error(401))
    with pytest.raises(VasegError) as caught:
        download_openeds(load_settings(raw={"dir": tmp_path / "raw"}))
    message = caught.value.message
    assert "rejected the credentials (HTTP 401) from KAGGLE_USERNAME/KAGGLE_KEY" in message
    assert "https://www.kaggle.com/settings" in message and "network" not in message
    assert_no_secret(message)
    # The key did travel, in the request's Authorization header only.
    assert kaggle_server.requests[0].headers["Authorization"].startswith("Basic ")


def test_http_403_on_download_says_to_accept_the_terms(kaggle_dir, kaggle_server, tmp_path):
    write_kaggle_json(kaggle_dir, 0o600)
    kaggle_server.route("POST", GET_DATASET, Reply(200, {"currentVersionNumber": 1}))
    kaggle_server.route("POST", DOWNLOAD_DATASET, _error(403))
    with pytest.raises(VasegError) as caught:
        download_openeds(load_settings(raw={"dir": tmp_path / "raw"}))
    message = caught.value.message
    assert "refused access (HTTP 403)" in message and str(kaggle_dir / "kaggle.json") in message
    assert f"https://www.kaggle.com/datasets/{DATASET}" in message and "accept" in message
    assert_no_secret(message)


def test_http_server_error_is_not_called_a_credentials_problem(with_key, kaggle_server, tmp_path):
    kaggle_server.route("POST", GET_DATASET, _error(503))
    with pytest.raises(VasegError) as caught:
        download_openeds(load_settings(raw={"dir": tmp_path / "raw"}))
    assert "HTTP 503" in caught.value.message and "credentials" not in caught.value.message


def test_http_partial_download_names_force_and_force_replaces_it(with_key, kaggle_server, tmp_path):
    _serve_dataset(kaggle_server, tmp_path)
    raw_dir = tmp_path / "raw"
    (raw_dir / "openEDS" / "openEDS" / "train" / "images").mkdir(parents=True)  # an interrupted extraction
    settings = load_settings(raw={"dir": raw_dir})
    with pytest.raises(VasegError) as caught:
        download_openeds(settings)
    assert str(raw_dir) in caught.value.message and "--force-download" in caught.value.message
    assert "network" not in caught.value.message
    assert download_openeds(settings, force=True) == raw_dir / "openEDS" / "openEDS" and is_complete(raw_dir)


def test_kaggle_unreachable_says_so(with_key, monkeypatch, tmp_path):
    import socket

    from kagglesdk import kaggle_env

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.TEST, f"http://127.0.0.1:{closed}")
    with pytest.raises(VasegError) as caught:
        download_openeds(load_settings(raw={"dir": tmp_path / "raw"}))
    assert "Could not reach Kaggle" in caught.value.message and "disk space" not in caught.value.message


@pytest.mark.parametrize("dataset", ["bad id", "owner", "a/b/c"])
def test_malformed_dataset_id_is_a_usage_error_before_credentials(kaggle_dir, tmp_path, dataset):
    with pytest.raises(VasegError) as caught:
        download_openeds(load_settings(raw={"dir": tmp_path / "raw", "kaggle_dataset": dataset}))
    assert caught.value.exit_code == 2 and repr(dataset) in caught.value.message and "OWNER/NAME" in caught.value.message
