"""`vaseg push` (and `vaseg precompute` without --no-push) with the Hub client patched at HfApi."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import huggingface_hub
import pytest
from typer.testing import CliRunner

from visionassist_seg import hub
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
    assert kwargs["allow_patterns"] == ["data/*.parquet", "README.md"] and Path(kwargs["folder_path"]) == out
    assert TOKEN not in result.output


def test_precompute_without_no_push_uses_push_dataset(raw, tmp_path, hub_api):
    out = tmp_path / "out"
    with mock.patch("visionassist_seg.hub.push_dataset", wraps=hub.push_dataset) as push:
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
