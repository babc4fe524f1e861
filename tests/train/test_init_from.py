"""`--init-from` (a new run from old weights) and `--resume` given files it cannot continue."""

from pathlib import Path
from unittest import mock

import pytest
import torch
from seed_model import export_like_seed, old_vaseg_name, trained_like

from visionassist_seg.errors import VasegError
from visionassist_seg.settings import load_settings
from visionassist_seg.train import loop
from visionassist_seg.train.checkpoint import load_checkpoint
from visionassist_seg.train.loop import train
from visionassist_seg.train.model import ShallowNet


def _settings(dataset, run_dir, **train):
    """Settings training on ``dataset`` into ``run_dir``; ``train`` are [train] settings (init_from=...)."""
    recipe = dict(source="local", run_dir=run_dir, epochs=1, batch_size=4, scale=0.1, device="cpu")
    return load_settings(workers=1, seed=5, dataset={"dir": dataset}, train={**recipe, **train})


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(2)
    return trained_like(ShallowNet(), seed=2)


def _write(kind: str, model: ShallowNet, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "onnx":
        return export_like_seed(model, folder / "seed.onnx", (64, 40))
    path = folder / ("best.pt" if kind == "checkpoint" else "weights.pt")
    if kind == "state dict":
        torch.save(model.state_dict(), path)
    else:  # a checkpoint of today's vaseg, with its old key names, after 3 epochs
        old = {old_vaseg_name(k): v for k, v in model.state_dict().items()}
        optimizer = torch.optim.Adam(ShallowNet().parameters())
        torch.save({"model": old, "optimizer": optimizer.state_dict(), "epoch": 3, "model_config": {"scale": 0.5}}, path)
    return path


@pytest.mark.parametrize("kind", ["checkpoint", "state dict", "onnx"])
def test_init_from_starts_a_new_run_from_the_weights(tiny_dataset, tmp_path, source, kind, capsys):
    weights = _write(kind, source, tmp_path / "old")
    seen = {}
    real = loop.train_one_epoch

    def first_epoch(model, batches, optimizer, *args, **kwargs):
        seen.setdefault("state", {k: v.clone() for k, v in model.state_dict().items()})
        seen.setdefault("optimizer_state", dict(optimizer.state))
        return real(model, batches, optimizer, *args, **kwargs)

    run_dir = tmp_path / "run"
    # The ONNX export at the end is tested elsewhere; skip it to keep this fast.
    with mock.patch.object(loop, "train_one_epoch", first_epoch), mock.patch.object(loop, "export_best", return_value=None):
        result = train(_settings(tiny_dataset, run_dir, init_from=weights), progress=False)
    assert f"({kind})" in capsys.readouterr().out
    for name, tensor in source.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(seen["state"][name], tensor), name
    assert seen["optimizer_state"] == {}  # a fresh optimiser
    assert [row["epoch"] for row in result.metrics] == [1]
    assert load_checkpoint(run_dir / "last.pt", torch.device("cpu"))["epoch"] == 1


def test_init_from_and_resume_together_is_a_usage_error(tiny_dataset, tmp_path, source):
    weights = _write("state dict", source, tmp_path / "old")
    with pytest.raises(VasegError, match="not both") as err:
        train(_settings(tiny_dataset, tmp_path / "r", init_from=weights, resume=weights), progress=False)
    assert err.value.exit_code == 2


@pytest.mark.parametrize("kind, what", [("state dict", "a plain state dict"), ("onnx", "an ONNX file")])
def test_resume_from_weights_only_says_to_use_init_from(tmp_path, source, kind, what):
    weights = _write(kind, source, tmp_path / "old")
    with pytest.raises(VasegError, match=f"is {what}: .* pass --init-from {weights} instead of --resume"):
        load_checkpoint(weights, torch.device("cpu"))


def test_resume_from_a_checkpoint_missing_keys_names_them(tmp_path, source):
    path = tmp_path / "hand_made.pt"
    torch.save({"model": source.state_dict(), "epoch": 2}, path)
    with pytest.raises(VasegError) as err:
        load_checkpoint(path, torch.device("cpu"))
    message = err.value.message
    assert "lacks optimizer, scheduler, scaler, metrics, best, rng" in message and f"--init-from {path}" in message


def test_init_from_with_mismatched_weights_names_the_keys(tiny_dataset, tmp_path, source):
    path = tmp_path / "other.pt"
    torch.save({"backbone.weight": torch.zeros(2)}, path)
    with pytest.raises(VasegError, match=r"do not fit ShallowNet: missing down_block1\.depthwise_conv1\.weight"):
        train(_settings(tiny_dataset, tmp_path / "r", init_from=path), progress=False)
