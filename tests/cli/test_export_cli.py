"""`vaseg export` and the weight options of `vaseg train`, driven through the CLI."""

import importlib.util
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from visionassist_seg.cli.app import app
from visionassist_seg.train.model import ShallowNet

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
seed_model = importlib.import_module("seed_model")
_spec = importlib.util.spec_from_file_location("train_datasets", Path(__file__).parents[1] / "train" / "train_fixtures.py")
_datasets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_datasets)

runner = CliRunner()


def _text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(4)
    return seed_model.trained_like(ShallowNet(), seed=4)


def _signature(path: Path) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [(t.name, t.shape) for t in (*session.get_inputs(), *session.get_outputs())]


def test_export_a_state_dict_in_the_standard_layout(tmp_path, weights):
    source = tmp_path / "weights.pt"
    torch.save(weights.state_dict(), source)
    output = tmp_path / "[bold]out" / "model.onnx"  # rich markup in a path is shown as typed
    result = runner.invoke(app, ["export", str(source), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {output} (standard layout from a state dict)" in _text(result)
    assert _signature(output) == [("image", ["batch", 1, 400, 640]), ("logits", ["batch", 2, 400, 640])]


def test_export_the_reference_onnx_for_the_demo(tmp_path, weights):
    source = seed_model.export_like_seed(weights, tmp_path / "seed.onnx", (64, 40))
    output = tmp_path / "demo.onnx"
    result = runner.invoke(app, ["export", str(source), "-o", str(output), "--layout", "legacy"])
    assert result.exit_code == 0, result.output
    assert "(legacy layout from an ONNX file)" in _text(result)
    assert "'input' [batch_size, 1, 640, 400] -> 'output' [batch_size, 2, 640, 400]" in _text(result)
    assert _signature(output) == [("input", ["batch_size", 1, 640, 400]), ("output", ["batch_size", 2, 640, 400])]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["export", "{tmp}/missing.pt", "--output", "{tmp}/x.onnx"], 1, "does not exist"),
        (["export", "{tmp}/weights.pt", "--output", "{tmp}"], 2, "is a folder"),
        (["export", "{tmp}/weights.pt", "--output", "{tmp}/x.onnx", "--layout", "sideways"], 2, "sideways"),
        (["export", "{tmp}/garbage.pt", "--output", "{tmp}/x.onnx"], 1, "Cannot read"),
    ],
)
def test_export_errors_are_one_paragraph(tmp_path, weights, args, code, message):
    torch.save(weights.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x80garbage")
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == code, result.output
    assert message in _text(result) and "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_export_help_has_an_example():
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "--layout legacy" in _text(result)


def test_train_resume_from_a_state_dict_says_to_use_init_from(tmp_path, weights):
    dataset = _datasets.write_dataset(tmp_path / "dataset", train=4, validation=4)
    source = tmp_path / "weights.pt"
    torch.save(weights.state_dict(), source)
    args = ["train", "--dataset", str(dataset), "--device", "cpu", "--workers", "1", "--scale", "0.1"]
    result = runner.invoke(app, [*args, "--resume", str(source)])
    assert result.exit_code == 1, result.output
    assert f"pass --init-from {source} instead of --resume" in _text(result) and "KeyError" not in result.output
    result = runner.invoke(app, [*args, "--resume", str(source), "--init-from", str(source)])
    assert result.exit_code == 2 and "not both" in _text(result)
