"""`--hf-repo` is checked with the Hub's own repository-id rule while parsing, for every command that takes it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app

COMMANDS = [
    ["push", "--dataset", "does-not-matter"],
    ["precompute", "--no-push", "--skip-download"],
    ["train", "--epochs", "1"],
    ["validate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("repo_id", ["bad repo!!", "a/b/c"])
def test_bad_hf_repo_exits_2_with_one_paragraph_before_any_work(command, repo_id, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, [*command, "--hf-repo", repo_id])
    assert result.exit_code == 2, result.output
    assert f"--hf-repo '{repo_id}' is not a Hugging Face repository id" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written: refused before the command body ran


@pytest.mark.parametrize("command", [["precompute", "--skip-download"], ["push"]], ids=lambda c: c[0])
def test_bad_hf_repo_from_the_environment_is_refused_before_any_work(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VASEG_HF_REPO", "bad repo!!")
    (tmp_path / "ds" / "data").mkdir(parents=True)
    (tmp_path / "ds" / "data" / "train-00000-of-00001.parquet").write_bytes(b"x")
    (tmp_path / "ds" / "README.md").write_text("card")
    args = [*command, "--dataset", str(tmp_path / "ds")] if command[0] == "push" else command
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "'bad repo!!' is not a Hugging Face repository id" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
