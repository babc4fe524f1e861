import json
from pathlib import Path

import infer_fixtures as fx
import pytest
import train_fixtures
from cli_helpers import output_text, runner

from visionassist_seg.cli.app import app


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate-cli")
    return {
        "dataset": train_fixtures.write_dataset(root / "dataset", train=2, validation=3),
        "model": fx.export(fx.DarkIsPupil(), root / "dark.onnx"),
        "foreign": fx.export(fx.DarkIsPupil(), root / "foreign.onnx", input_shape=(1, 3, 224, 224), names=("x", "y")),
    }


def test_evaluate_prints_scores_and_writes_json_and_overlays(setup, tmp_path):
    result = runner.invoke(
        app,
        ["evaluate", str(setup["model"]), "--dataset", str(setup["dataset"]), "--json", str(tmp_path / "r.json"),
         "--overlays", str(tmp_path / "worst"), "--worst", "2", "--batch-size", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = output_text(result)
    assert "pupil IoU" in text and "challenge score" in text and "Worst 2 samples" in text
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"pupil_iou", "miou", "challenge_score", "samples"} <= set(report)
    assert len(report["samples"]) == 3 and report["split"] == "validation" and report["layout"] == "standard"
    assert set(report["samples"][0]) >= {"iou", "center_error", "area_error", "filename"}
    assert 0 < report["pupil_iou"] <= 1 and len(list((tmp_path / "worst").glob("*.png"))) == 2


def test_evaluate_train_split_and_limit(setup, tmp_path):
    result = runner.invoke(
        app, ["evaluate", str(setup["model"]), "--dataset", str(setup["dataset"]), "--split", "train", "--limit", "1", "--json", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "r.json").read_text())["samples"]) == 1


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([], 2, "either --dataset DIR or --hf-repo ID"),
        (["--dataset", "x", "--hf-repo", "a/b"], 2, "either --dataset DIR or --hf-repo ID"),
        (["--split", "test"], 2, "--split 'test' is not in"),
        (["--dataset", "/nonexistent/ds"], 1, "does not exist"),
    ],
)
def test_usage_and_data_errors(setup, args, code, message):
    if args and args[0] == "--split":
        args = ["--dataset", str(setup["dataset"]), *args]
    result = runner.invoke(app, ["evaluate", str(setup["model"]), *args])
    assert result.exit_code == code and message in output_text(result)


def test_unexpected_model_interface(setup):
    result = runner.invoke(app, ["evaluate", str(setup["foreign"]), "--dataset", str(setup["dataset"])])
    assert result.exit_code == 1 and "unexpected interface" in output_text(result)


def test_hf_repo_is_downloaded_through_the_hub_client(setup, monkeypatch, tmp_path):
    calls = []

    def fake_download(repo_id, revision=None, **_):
        calls.append((repo_id, revision))
        return setup["dataset"]

    monkeypatch.setattr("visionassist_seg.hub.download_dataset", fake_download)
    result = runner.invoke(app, ["evaluate", str(setup["model"]), "--hf-repo", "me/eyes", "--revision", "v1"])
    assert result.exit_code == 0, result.output
    assert calls == [("me/eyes", "v1")] and "me/eyes" in output_text(result)
