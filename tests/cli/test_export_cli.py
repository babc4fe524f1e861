"""`vaseg export` and the weight options of `vaseg train`, driven through the CLI."""

from pathlib import Path

import onnxruntime as ort
import pytest
import seed_model
import torch
import train_fixtures
from cli_helpers import output_text, runner

from visionassist_seg.cli.app import app
from visionassist_seg.train.model import ShallowNet


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
    assert f"Wrote {output} (standard layout from a state dict)" in output_text(result)
    assert _signature(output) == [("image", ["batch", 1, 400, 640]), ("logits", ["batch", 2, 400, 640])]


def test_export_the_reference_onnx_for_the_demo(tmp_path, weights):
    source = seed_model.export_like_seed(weights, tmp_path / "seed.onnx", (64, 40))
    output = tmp_path / "demo.onnx"
    result = runner.invoke(app, ["export", str(source), "-o", str(output), "--layout", "legacy"])
    assert result.exit_code == 0, result.output
    assert "(legacy layout from an ONNX file)" in output_text(result)
    assert "'input' [batch_size, 1, 640, 400] -> 'output' [batch_size, 2, 640, 400]" in output_text(result)
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
    assert message in output_text(result) and "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_export_help_has_an_example():
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "--layout legacy" in output_text(result)


def test_train_resume_from_a_state_dict_says_to_use_init_from(tmp_path, weights):
    dataset = train_fixtures.write_dataset(tmp_path / "dataset", train=4, validation=4)
    source = tmp_path / "weights.pt"
    torch.save(weights.state_dict(), source)
    args = ["train", "--dataset", str(dataset), "--device", "cpu", "--workers", "1", "--scale", "0.1"]
    result = runner.invoke(app, [*args, "--resume", str(source)])
    assert result.exit_code == 1, result.output
    assert f"pass --init-from {source} instead of --resume" in output_text(result) and "KeyError" not in result.output
    result = runner.invoke(app, [*args, "--resume", str(source), "--init-from", str(source)])
    assert result.exit_code == 2 and "not both" in output_text(result)
