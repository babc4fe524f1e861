"""Session fixtures for the inference tests: a short training run, ONNX stubs, a legacy dataset (each made once)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # infer_fixtures, whichever test folder runs first

from infer_fixtures import DarkIsPupil, LegacyLayout, export  # noqa: E402


@pytest.fixture(scope="session")
def eval_dataset(tmp_path_factory) -> Path:
    """A synthetic dataset made by `vaseg download` + `vaseg precompute` (16 train, 4 validation rows)."""
    from typer.testing import CliRunner

    from visionassist_seg.cli.app import app

    root = tmp_path_factory.mktemp("infer-data")
    raw, out = root / "raw", root / "dataset"
    runner = CliRunner()
    result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "16", "--raw-dir", str(raw)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["precompute", "--no-push", "--skip-download", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def trained_run(eval_dataset, tmp_path_factory) -> Path:
    """A two-epoch CPU training run at scale 0.25 through `vaseg train` (best.pt, best.onnx, metrics.csv)."""
    from typer.testing import CliRunner

    from visionassist_seg.cli.app import app

    run_dir = tmp_path_factory.mktemp("infer-run") / "run"
    args = ["train", "--dataset", str(eval_dataset), "--output-dir", str(run_dir), "--epochs", "2", "--batch-size", "4",
            "--scale", "0.25", "--workers", "1", "--device", "cpu", "--seed", "3", "--lr", "3e-3"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="session")
def legacy_onnx(trained_run) -> Path:
    """The trained run's best.pt in the live demo's legacy ONNX layout (what `vaseg export --layout legacy` makes)."""
    import torch

    from visionassist_seg.train.export import DeviceModel
    from visionassist_seg.train.checkpoint import load_checkpoint
    from visionassist_seg.train.model import ShallowNet

    state = load_checkpoint(trained_run / "best.pt", torch.device("cpu"))
    model = ShallowNet()
    model.load_state_dict(state["model"])
    wrapped = LegacyLayout(DeviceModel(model.eval(), state["model_config"]["scale"]))
    return export(wrapped, trained_run.parent / "legacy.onnx", legacy=True)


@pytest.fixture(scope="session")
def stub_models(tmp_path_factory) -> dict[str, Path]:
    """ONNX stubs that call dark pixels pupil: 'standard', 'legacy', and 'foreign' (an unexpected interface)."""
    root = tmp_path_factory.mktemp("stubs")
    return {
        "standard": export(DarkIsPupil(), root / "dark.onnx"),
        "legacy": export(LegacyLayout(DarkIsPupil()), root / "dark-legacy.onnx", legacy=True),
        "foreign": export(DarkIsPupil(), root / "foreign.onnx", input_shape=(1, 3, 224, 224), names=("x", "y")),
    }
