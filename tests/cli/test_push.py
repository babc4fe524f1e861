"""`vaseg push` (and `vaseg precompute` without --no-push) with the Hub client patched at HfApi."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import huggingface_hub
import pytest
from typer.testing import CliRunner

from visionassist_seg import hub
from visionassist_seg.pipeline import push as pipeline_push
from visionassist_seg.cli.app import app

runner = CliRunner()
TOKEN = "hf_CLItokenMUSTnotLEAK987"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw)])
    assert result.exit_code == 0, result.output
    return raw


@pytest.fixture
def hub_api(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with (
        mock.patch.object(huggingface_hub.HfApi, "create_repo") as create_repo,
        mock.patch.object(huggingface_hub.HfApi, "create_branch") as create_branch,
        mock.patch.object(huggingface_hub.HfApi, "upload_folder") as upload_folder,
    ):
        yield {"create_repo": create_repo, "create_branch": create_branch, "upload_folder": upload_folder}


def _precompute(raw: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        ["precompute", "--skip-download", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1", *extra],
    )


def test_precompute_then_push(raw, tmp_path, hub_api):
    out = tmp_path / "out"
    assert _precompute(raw, out, "--no-push").exit_code == 0
    hub_api["upload_folder"].assert_not_called()
    result = runner.invoke(
        app,
        ["push", "--dataset", str(out), "--hf-repo", "someone/eyes", "--private", "--revision", "v1",
         "--message", "OpenEDS v1", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "https://huggingface.co/datasets/someone/eyes/tree/v1" in " ".join(result.stdout.split())
    hub_api["create_repo"].assert_called_once_with("someone/eyes", repo_type="dataset", private=True, exist_ok=True)
    kwargs = hub_api["upload_folder"].call_args.kwargs
    assert kwargs["revision"] == "v1" and kwargs["commit_message"] == "OpenEDS v1"
    assert kwargs["ignore_patterns"] == hub.PRIVATE_PATTERNS and Path(kwargs["folder_path"]) == out
    assert kwargs["delete_patterns"] == hub.DATASET_FILE_PATTERNS
    assert TOKEN not in result.output


def test_precompute_without_no_push_uses_push_dataset(raw, tmp_path, hub_api):
    out = tmp_path / "out"
    with mock.patch("visionassist_seg.pipeline.push.push_dataset", wraps=pipeline_push.push_dataset) as push:
        result = _precompute(raw, out, "--hf-repo", "someone/eyes")
    assert result.exit_code == 0, result.output
    push.assert_called_once()
    assert Path(push.call_args.args[0]) == out
    assert hub_api["upload_folder"].call_args.kwargs["repo_id"] == "someone/eyes"
    assert "https://huggingface.co/datasets/someone/eyes" in result.stdout


def test_push_without_token_exits_1_naming_the_fix(raw, tmp_path, hub_api, monkeypatch):
    out = tmp_path / "out"
    assert _precompute(raw, out, "--no-push").exit_code == 0
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    result = runner.invoke(app, ["push", "--dataset", str(out), "--workers", "1"])
    assert result.exit_code == 1
    assert "No Hugging Face token" in result.stderr and "HF_TOKEN" in result.stderr
    hub_api["upload_folder"].assert_not_called()


def test_push_rejected_token_never_prints_the_token(raw, tmp_path, hub_api):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    out = tmp_path / "out"
    assert _precompute(raw, out, "--no-push").exit_code == 0
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create", headers={"authorization": f"Bearer {TOKEN}"})
    response = httpx2.Response(401, request=request)
    hub_api["create_repo"].side_effect = HfHubHTTPError("401 Unauthorized", response=response)
    result = runner.invoke(app, ["push", "--dataset", str(out), "--workers", "1"])
    assert result.exit_code == 1
    assert "rejected the token (401)" in result.stderr
    assert TOKEN not in result.output and TOKEN not in result.stderr


def test_push_of_a_missing_folder_exits_1(tmp_path, hub_api):
    result = runner.invoke(app, ["push", "--dataset", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "is not a precomputed dataset" in result.stderr


def test_repush_with_another_shard_size_leaves_only_the_new_shards_on_the_hub(raw, tmp_path, monkeypatch):
    """The issue's case, through the CLI and the real Hub client: 8 rows, not 16, after the second push."""
    from http_stub import StubServer
    from hub_stub import FakeHubRepo

    small, large = tmp_path / "small", tmp_path / "large"
    assert _precompute(raw, small, "--no-push", "--shard-size", "1").exit_code == 0
    assert _precompute(raw, large, "--no-push").exit_code == 0
    with StubServer() as server:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        repo = FakeHubRepo(server, "someone/eyes", {".gitattributes": b"*.parquet filter=lfs"})
        for folder in (small, large):
            result = runner.invoke(app, ["push", "--dataset", str(folder), "--hf-repo", "someone/eyes", "--workers", "1"])
            assert result.exit_code == 0, result.output
    published = {p.relative_to(large).as_posix(): p.read_bytes() for p in large.rglob("*")
                 if p.is_file() and not p.relative_to(large).as_posix().startswith(".vaseg")}
    assert {path: data for path, data in repo.files.items() if path != ".gitattributes"} == published
    assert len([p for p in published if p.startswith("data/")]) < len(list((small / "data").iterdir()))
