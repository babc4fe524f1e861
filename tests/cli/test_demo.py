import pytest
from cli_helpers import output_text, runner

from visionassist_seg.cli.app import app


def test_demo_small_run_end_to_end(tmp_path):
    directory = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--dir", str(directory), "--count", "8", "--epochs", "1", "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    assert "Demo finished" in output_text(result) and "Validation pupil IoU" in output_text(result)
    assert "scale 0.1" in output_text(result) and "1 epochs" in output_text(result)
    for path in ("raw", "dataset/manifest.json", "run/metrics.csv", "run/best.onnx", "run/plots/overlays.png"):
        assert (directory / path).exists(), path


def test_demo_refuses_a_non_empty_folder_without_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path), "--count", "8", "--epochs", "1", "--scale", "0.1"])
    assert result.exit_code == 1
    assert "not empty" in output_text(result)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_demo_defaults_reach_pupil_iou_09(tmp_path):
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    iou = float(output_text(result).split("Validation pupil IoU ")[1].split()[0])
    assert iou >= 0.9
