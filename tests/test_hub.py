"""pipeline.push.push_dataset (validate, then hub.upload_dataset) / hub.download_dataset with the Hub client replaced at its boundary.

Happy paths patch `HfApi` methods and assert what would be sent; error paths run the real
client against an httpx MockTransport (`huggingface_hub.set_client_factory`), so the Hub
library's own error classes are what `hub.py` translates.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import httpx2
import huggingface_hub
import pytest
from huggingface_hub.utils import filter_repo_objects

from visionassist_seg.errors import VasegError
from visionassist_seg.hub import (
    DATASET_FILE_PATTERNS,
    PRIVATE_PATTERNS,
    check_repo_id,
    download_dataset,
)
from visionassist_seg.pipeline.push import push_dataset
from visionassist_seg.settings import load_settings
from http_stub import Reply, StubServer
from hub_stub import FakeHubRepo

TOKEN = "hf_TESTtokenNEVERprintedXYZ123"


@pytest.fixture
def precomputed(cli_dataset) -> Path:
    """A small dataset made by `vaseg download --source synthetic` and `vaseg precompute --no-push`."""
    return cli_dataset["dataset"]


@pytest.fixture
def no_saved_token(monkeypatch, tmp_path):
    """No HF_TOKEN in the environment and no saved login."""
    for name in ("HF_TOKEN", "VASEG_HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def settings_for(dataset: Path, **hub):
    """Settings pushing ``dataset`` to someone/eyes; ``hub`` are [hub] settings (private=True)."""
    return load_settings(None, workers=1, dataset={"dir": dataset}, hub={"repo": "someone/eyes", **hub})


@pytest.fixture
def hub_api():
    """Patch the HfApi methods push uses; yield the mocks."""
    with (
        mock.patch.object(huggingface_hub.HfApi, "create_repo") as create_repo,
        mock.patch.object(huggingface_hub.HfApi, "create_branch") as create_branch,
        mock.patch.object(huggingface_hub.HfApi, "upload_folder") as upload_folder,
    ):
        yield {"create_repo": create_repo, "create_branch": create_branch, "upload_folder": upload_folder}


def test_push_creates_dataset_repo_and_uploads_the_folder_without_private_state(precomputed, hub_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    url = push_dataset(precomputed, settings_for(precomputed, private=True), message="first upload")
    assert url == "https://huggingface.co/datasets/someone/eyes"
    hub_api["create_repo"].assert_called_once_with("someone/eyes", repo_type="dataset", private=True, exist_ok=True)
    hub_api["create_branch"].assert_not_called()
    kwargs = hub_api["upload_folder"].call_args.kwargs
    assert kwargs["repo_id"] == "someone/eyes" and kwargs["repo_type"] == "dataset"
    assert Path(kwargs["folder_path"]) == precomputed and kwargs["commit_message"] == "first upload"
    assert kwargs["revision"] is None
    # What upload_folder sends is the folder less ignore_patterns: card, shards and manifest, no .vaseg state.
    files = [p.relative_to(precomputed).as_posix() for p in precomputed.rglob("*") if p.is_file()]
    sent = set(filter_repo_objects(files, ignore_patterns=kwargs["ignore_patterns"]))
    assert sent == {f for f in files if f.startswith("data/")} | {"README.md", "manifest.json"}
    assert any(f.startswith(".vaseg/") for f in files)
    assert kwargs["delete_patterns"] == DATASET_FILE_PATTERNS


def test_upload_and_delete_patterns_follow_any_layout_not_shard_names():
    local = [
        "README.md", "data/train/shard_00000.parquet", "data/validation/shard_00000.parquet", "notes.txt",
        ".vaseg/shards/x.json", ".vaseg/tmp/y.tmp", ".vaseg.lock", ".manifest.json.123.tmp", "data/.x.parquet.9.tmp",
    ]
    sent = set(filter_repo_objects(local, ignore_patterns=PRIVATE_PATTERNS))
    assert sent == {"README.md", "data/train/shard_00000.parquet", "data/validation/shard_00000.parquet", "notes.txt"}
    remote = [
        ".gitattributes", "README.md", "manifest.json", "data/train-00000-of-00002.parquet",
        "data/train/shard_00000.parquet", "train/0000.parquet", "data/validation/extra.arrow", "notes/keep.txt",
    ]
    matched = set(filter_repo_objects(remote, allow_patterns=DATASET_FILE_PATTERNS))
    deleted = matched - sent - {".gitattributes"}
    assert deleted == {
        "manifest.json", "data/train-00000-of-00002.parquet", "train/0000.parquet", "data/validation/extra.arrow"
    }


def test_push_uses_the_token_from_hf_token(precomputed, hub_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with mock.patch.object(huggingface_hub, "HfApi", wraps=huggingface_hub.HfApi) as api_class:
        push_dataset(precomputed, settings_for(precomputed))
    assert api_class.call_args.kwargs["token"] == TOKEN


def test_push_to_a_revision_creates_the_branch(precomputed, hub_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    url = push_dataset(precomputed, settings_for(precomputed, revision="v2"))
    assert url == "https://huggingface.co/datasets/someone/eyes/tree/v2"
    hub_api["create_branch"].assert_called_once_with("someone/eyes", branch="v2", repo_type="dataset", exist_ok=True)
    assert hub_api["upload_folder"].call_args.kwargs["revision"] == "v2"


def _break_one_label(dataset: Path, tmp_path: Path) -> Path:
    import shutil

    import numpy as np
    import pyarrow.parquet as pq

    copy = Path(shutil.copytree(dataset, tmp_path / "broken"))
    shard = sorted((copy / "data").glob("train-*.parquet"))[0]
    table = pq.read_table(shard)
    rows = table.to_pylist()
    label = np.array(rows[0]["label"], dtype=np.uint8)
    label[0, 0] = 7
    rows[0]["label"] = label.tolist()
    pq.write_table(table.from_pylist(rows, schema=table.schema), shard)
    return copy


def test_push_refuses_a_failing_dataset_unless_forced(precomputed, hub_api, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    broken = _break_one_label(precomputed, tmp_path)
    with pytest.raises(VasegError) as caught:
        push_dataset(broken, settings_for(broken))
    assert "Refusing to push" in caught.value.message and "values: label" in caught.value.message
    assert "--force" in caught.value.message
    hub_api["upload_folder"].assert_not_called()
    push_dataset(broken, settings_for(broken), force=True)
    hub_api["upload_folder"].assert_called_once()


def test_push_without_a_token_names_the_fix(precomputed, hub_api, no_saved_token):
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed))
    assert "No Hugging Face token" in caught.value.message and "hf auth login" in caught.value.message
    hub_api["create_repo"].assert_not_called()


def test_push_refuses_a_folder_that_is_not_a_dataset(tmp_path, hub_api):
    with pytest.raises(VasegError) as caught:
        push_dataset(tmp_path, settings_for(tmp_path))
    assert "is not a precomputed dataset" in caught.value.message


@pytest.fixture
def mock_hub(monkeypatch):
    """Route the real Hub client through a MockTransport; set ``.handler`` to answer requests."""
    from huggingface_hub.utils._http import default_client_factory

    state = {"requests": []}

    def handler(request: httpx2.Request) -> httpx2.Response:
        state["requests"].append(request)
        return state["respond"](request)

    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield state
    huggingface_hub.set_client_factory(default_client_factory)


def _status(code: int, message: str = ""):
    headers = {"X-Error-Message": message} if message else {}
    return lambda request: httpx2.Response(code, headers=headers, json={"error": message}, request=request)


def _offline(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("[Errno 101] Network is unreachable", request=request)


@pytest.mark.parametrize(
    ("respond", "expected"),
    [
        (_status(401, "Invalid credentials in Authorization header"), "rejected the token (401)"),
        (_status(403, "You don't have the rights to create a dataset under this namespace"), "No write access (403)"),
        (_offline, "Network failure"),
        (_status(500), "HTTP 500"),
    ],
)
def test_push_errors_each_get_their_own_message_without_the_token(precomputed, mock_hub, respond, expected, capsys):
    mock_hub["respond"] = respond
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed))
    message = caught.value.message
    assert expected in message and "someone/eyes" in message
    assert TOKEN not in message and TOKEN not in str(caught.value.__cause__ or "")
    assert TOKEN not in capsys.readouterr().err
    # The client did send the token, in the Authorization header of the create request only.
    create = [r for r in mock_hub["requests"] if r.url.path == "/api/repos/create"]
    assert create and create[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_error_messages_name_the_fix(precomputed, mock_hub):
    fixes = {
        401: "https://huggingface.co/settings/tokens",
        403: "--hf-repo YOUR_NAME/DATASET",
    }
    for code, fix in fixes.items():
        mock_hub["respond"] = _status(code)
        with pytest.raises(VasegError) as caught:
            push_dataset(precomputed, settings_for(precomputed))
        assert fix in caught.value.message
    mock_hub["respond"] = _offline
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed))
    assert "sends only what is missing" in caught.value.message


def test_wrapped_upload_failure_is_reported_as_network_failure(precomputed, hub_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    request = httpx2.Request("PUT", "https://cas-server.xethub.hf.co/xorbs")
    try:
        try:
            raise httpx2.ReadTimeout("timed out", request=request)
        except httpx2.ReadTimeout as timeout:
            raise RuntimeError("Error while uploading 'data/train-00000-of-00001.parquet' to the Hub.") from timeout
    except RuntimeError as wrapped:
        hub_api["upload_folder"].side_effect = wrapped
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed))
    assert "Network failure" in caught.value.message and "ReadTimeout" in caught.value.message


def test_unrelated_errors_are_not_disguised(precomputed, hub_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub_api["upload_folder"].side_effect = KeyError("bug")
    with pytest.raises(KeyError):
        push_dataset(precomputed, settings_for(precomputed))




@pytest.mark.parametrize(
    ("respond", "expected"),
    [
        (
            lambda request: httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"}, request=request),
            "does not exist or your token cannot see it",
        ),
        (
            lambda request: httpx2.Response(404, headers={"X-Error-Code": "RevisionNotFound"}, request=request),
            "Revision not found",
        ),
        (_offline, "Network failure"),
    ],
)
def test_download_errors_name_the_fix(mock_hub, respond, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    mock_hub["respond"] = respond
    with pytest.raises(VasegError) as caught:
        download_dataset("someone/eyes", "v1")
    assert expected in caught.value.message and TOKEN not in caught.value.message


# --- the real Hub client against a scripted local server ------------------------------------


@pytest.fixture
def hub_server(monkeypatch):
    """A StubServer the real HfApi talks to (constants.ENDPOINT), with HF_TOKEN set."""
    with StubServer() as server:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def _local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_repush_over_http_leaves_the_hub_equal_to_the_local_dataset(precomputed, hub_server, tmp_path):
    # The Hub holds an earlier push with another shard size, a stale manifest and files vaseg does not own.
    earlier = {
        ".gitattributes": b"*.parquet filter=lfs\n", "README.md": b"old card", "manifest.json": b"{}",
        "data/train-00000-of-00002.parquet": b"old", "data/train-00001-of-00002.parquet": b"old",
        "data/validation-00000-of-00001.parquet": b"old", "notes/keep.txt": b"a user's file",
    }
    repo = FakeHubRepo(hub_server, "someone/eyes", earlier)
    url = push_dataset(precomputed, settings_for(precomputed))
    assert url == f"{hub_server.url}/datasets/someone/eyes"
    (commit,) = repo.commits()  # one commit: deletions ride with the upload
    created = {line["value"]["path"] for line in commit if line["key"] == "file"}
    deleted = {line["value"]["path"] for line in commit if line["key"] == "deletedFile"}
    published = {path for path in _local_files(precomputed) if not path.startswith(".vaseg")}
    assert created == published and "manifest.json" in created
    assert deleted == {"data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"}
    assert {path: data for path, data in repo.files.items() if path not in {".gitattributes", "notes/keep.txt"}} == {
        path: data for path, data in _local_files(precomputed).items() if path in published
    }
    assert repo.files["notes/keep.txt"] == b"a user's file" and ".gitattributes" in repo.files
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub_server.requested("POST", r"/api/.*/commit/.*"))


def test_push_over_http_401_names_the_token_fix(precomputed, hub_server):
    hub_server.route("POST", r"/api/repos/create", Reply(401, {"error": "Invalid credentials"},
                                                         {"X-Error-Message": "Invalid credentials"}))
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed))
    assert "rejected the token (401)" in caught.value.message and TOKEN not in caught.value.message


def test_bad_repo_id_is_refused_before_any_work(precomputed, hub_server):
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed, repo="bad repo!!"))
    assert caught.value.exit_code == 2 and "'bad repo!!' is not a Hugging Face repository id" in caught.value.message
    assert hub_server.requests == []


@pytest.mark.parametrize("repo_id", ["bad repo!!", "a/b/c", "owner/name.git", "a--b/c", "x" * 97])
def test_check_repo_id_uses_the_hub_rule(repo_id):
    with pytest.raises(VasegError) as caught:
        check_repo_id(repo_id)
    assert caught.value.exit_code == 2 and "OWNER/NAME" in caught.value.message


def test_check_repo_id_accepts_ids_the_hub_accepts():
    assert check_repo_id("Conner/openeds-precomputed") == "Conner/openeds-precomputed"


def test_push_with_a_card_the_hub_refuses_names_the_card(precomputed, hub_server):
    FakeHubRepo(hub_server, "someone/eyes", {})
    hub_server.route("POST", r"/api/validate-yaml",
                     Reply(400, {"errors": [{"message": "configs[0].data_files: must be a list"}], "warnings": []}))
    with pytest.raises(VasegError) as caught:
        push_dataset(precomputed, settings_for(precomputed))
    assert "YAML header of the dataset card README.md" in caught.value.message
    assert "configs[0].data_files: must be a list" in caught.value.message


def test_download_with_a_bad_repo_id_from_settings_is_a_usage_error(tmp_path):
    with pytest.raises(VasegError) as caught:
        download_dataset("bad repo!!", local_dir=tmp_path / "d")
    assert caught.value.exit_code == 2 and "'bad repo!!' is not a Hugging Face repository id" in caught.value.message
