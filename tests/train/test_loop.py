import csv
import json
import sys
from unittest import mock

import pytest
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.settings import load_settings
from visionassist_seg.train import loop
from visionassist_seg.train.checkpoint import load_checkpoint
from visionassist_seg.train.device import resolve_device
from visionassist_seg.train.loop import train
from visionassist_seg.train.records import METRIC_FIELDS

TIMING = ("seconds", "samples_per_s")


def _settings(dataset, run_dir, **train):
    """Settings training on ``dataset`` into ``run_dir``; ``train`` are [train] settings (epochs=3)."""
    recipe = dict(source="local", run_dir=run_dir, epochs=2, batch_size=4, scale=0.1, device="cpu", lr=3e-3)
    return load_settings(workers=1, seed=5, dataset={"dir": dataset}, train={**recipe, **train})


def _metrics(run_dir):
    with (run_dir / "metrics.csv").open() as handle:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]


def test_train_writes_every_artifact(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    result = train(_settings(tiny_dataset, run_dir), progress=False)
    assert result.run_dir == run_dir and result.epochs_run == 2
    for name in ("config.json", "metrics.csv", "last.pt", "best.pt", "best.onnx", "plots/loss.png", "plots/iou.png", "plots/overlays.png"):
        assert (run_dir / name).is_file(), name
    with (run_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == METRIC_FIELDS and [r["epoch"] for r in rows] == ["1", "2"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train_height"] == 40 and config["train_width"] == 64 and config["parameters"] == 58_092
    state = load_checkpoint(run_dir / "last.pt", torch.device("cpu"))
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "settings", "metrics", "rng"} <= set(state)
    assert state["epoch"] == 2
    best = load_checkpoint(run_dir / "best.pt", torch.device("cpu"))
    assert best["best"]["pupil_iou"] == pytest.approx(max(float(r["val_pupil_iou"]) for r in rows), abs=1e-6)
    assert result.best_pupil_iou == pytest.approx(best["best"]["pupil_iou"])
    assert result.onnx_path == run_dir / "best.onnx"


def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(tiny_dataset, tmp_path):
    full = tmp_path / "full"
    train(_settings(tiny_dataset, full, epochs=3), progress=False)
    part = tmp_path / "part"
    real_evaluate = loop.evaluate
    calls = []

    def interrupt_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    with mock.patch.object(loop, "evaluate", side_effect=interrupt_in_epoch_two), pytest.raises(KeyboardInterrupt):
        train(_settings(tiny_dataset, part, epochs=3), progress=False)
    assert len(_metrics(part)) == 1
    # mess with the global RNGs in between, as a new process would
    torch.manual_seed(1234)
    train(_settings(tiny_dataset, part, epochs=3, resume=part / "last.pt"), progress=False)
    assert _metrics(part) == _metrics(full)
    a = load_checkpoint(full / "last.pt", torch.device("cpu"))["model"]
    b = load_checkpoint(part / "last.pt", torch.device("cpu"))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mlflow_logs_only_when_tracking_uri_is_set(tiny_dataset, tmp_path, monkeypatch):
    fake = mock.MagicMock()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    train(_settings(tiny_dataset, tmp_path / "a", epochs=1), progress=False)
    fake.start_run.assert_not_called()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///nowhere")
    train(_settings(tiny_dataset, tmp_path / "b", epochs=1), progress=False)
    fake.start_run.assert_called_once()
    params = fake.log_params.call_args.args[0]
    assert params["train.epochs"] == "1" and "hub.token" not in params and not any(k.startswith("modal") for k in params)
    assert fake.log_metrics.call_args.kwargs["step"] == 1
    assert "val_pupil_iou" in fake.log_metrics.call_args.args[0]
    fake.log_artifacts.assert_called_once_with(str(tmp_path / "b"))
    fake.end_run.assert_called_once()


def test_resume_from_a_missing_checkpoint_is_a_clear_error(tiny_dataset, tmp_path):
    with pytest.raises(VasegError, match="does not exist"):
        train(_settings(tiny_dataset, tmp_path / "r", resume=tmp_path / "nope.pt"), progress=False)


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(VasegError, match="does not exist"):
        train(_settings(tmp_path / "missing", tmp_path / "r"), progress=False)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(VasegError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(VasegError, match="Unknown --device"):
        resolve_device("tpu9")


def test_training_on_legacy_data_says_so_and_trains(legacy_dataset, tmp_path, capsys):
    result = train(_settings(legacy_dataset, tmp_path / "legacy", epochs=1), progress=False)
    err = " ".join(capsys.readouterr().err.split())  # rich wraps lines at the terminal width
    assert "Legacy dataset format" in err and "Gamma + CLAHE are applied at load time" in err
    assert result.onnx_path.is_file() and len(result.metrics) == 1


# --- issue 10: non-finite training stops and never saves the diverged weights ----------------------------


def _finite(state_dict) -> bool:
    return all(torch.isfinite(t).all() for t in state_dict.values() if t.is_floating_point())


def test_a_non_finite_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    real_loss, calls = loop.combined_loss, []

    def nan_in_epoch_two(*args, **kwargs):
        calls.append(1)  # epoch 1: 2 train steps + 1 validation batch; the 4th call is epoch 2, step 1
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) == 4 else loss

    with mock.patch.object(loop, "combined_loss", side_effect=nan_in_epoch_two):
        with pytest.raises(VasegError, match=r"epoch 2, step 1\b") as caught:
            train(_settings(tiny_dataset, run_dir, epochs=3), progress=False)
    assert "--lr" in caught.value.message
    last = load_checkpoint(run_dir / "last.pt", torch.device("cpu"))
    assert last["epoch"] == 1 and _finite(last["model"])
    assert _finite(load_checkpoint(run_dir / "best.pt", torch.device("cpu"))["model"])
    assert [row["epoch"] for row in _metrics(run_dir)] == ["1"]
    assert not (run_dir / "best.onnx").exists()


def test_an_infinite_learning_rate_stops_in_the_first_epoch_and_saves_nothing(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    # Settings refuse lr=inf (a usage error); a library caller can still build such settings.
    settings = _settings(tiny_dataset, run_dir, epochs=1).updated(train={"lr": float("inf")})
    with pytest.raises(VasegError, match=r"epoch 1, step 2\b"):
        train(settings, progress=False)
    for name in ("last.pt", "best.pt", "best.onnx", "metrics.csv"):
        assert not (run_dir / name).exists(), name


def test_non_finite_weights_or_validation_loss_stop_before_saving():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loop._check_finite_epoch(model, 0.5, 3, optimizer)  # all finite: no error
    with pytest.raises(VasegError, match="epoch 3, on validation"):
        loop._check_finite_epoch(model, float("nan"), 3, optimizer)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(VasegError, match="epoch 3, in the weights"):
        loop._check_finite_epoch(model, 0.5, 3, optimizer)


def test_training_holds_the_run_folder_lock(tiny_dataset, tmp_path):
    from visionassist_seg.folder_lock import folder_lock

    run_dir = tmp_path / "run"
    with folder_lock(run_dir, "training"):
        with pytest.raises(VasegError, match=r"Another vaseg run \(training, process"):
            train(_settings(tiny_dataset, run_dir, epochs=1), progress=False)
    assert not (run_dir / "config.json").exists()


def test_the_checkpoint_records_the_data_and_recipe(tiny_dataset, tmp_path):
    train(_settings(tiny_dataset, tmp_path / "run", epochs=1, limit=4), progress=False)
    recipe = load_checkpoint(tmp_path / "run" / "last.pt", torch.device("cpu"))["recipe"]
    assert recipe["source"] == "local" and recipe["dataset"] == str(tiny_dataset.resolve())
    assert recipe["shards"] and all(size > 0 for size in recipe["shards"].values())
    assert {k: recipe[k] for k in ("scale", "train_limit", "batch_size", "lr", "seed")} == {
        "scale": 0.1, "train_limit": 4, "batch_size": 4, "lr": 3e-3, "seed": 5
    }
