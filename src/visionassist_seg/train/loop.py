"""ShallowNet training: `train_one_epoch`, `evaluate`, checkpoints, metrics.csv, and `train` tying them together.

`train(settings)` reads everything from `Settings` and never touches the CLI, so the
same call runs locally and inside a Modal container.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from visionassist_seg.console import console, err_console, styled
from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import folder_lock
from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.settings import Settings
from visionassist_seg.train.export import DeviceModel, export_onnx, upsample_logits
from visionassist_seg.train.loader import PupilDataset, make_loader, scaled_size, stopping_workers
from visionassist_seg.train.losses import alpha_at, combined_loss
from visionassist_seg.train.metrics import IoUAccumulator, challenge_score
from visionassist_seg.train.model import ShallowNet, count_parameters
from visionassist_seg.train.resume import recipe_of, resumed_settings
from visionassist_seg.train.split_index import SplitIndex, index_dataset
from visionassist_seg.train.weights import is_state_dict, is_torch_file, load_state, read_torch_file, read_weights

METRIC_FIELDS = (
    "epoch", "train_loss", "val_loss", "val_pupil_iou", "val_background_iou", "val_miou",
    "challenge_score", "lr", "alpha", "seconds", "samples_per_s",
)  # fmt: skip
OVERLAY_IMAGES = 4
PROGRESS_EVERY = 5  # batches between progress refreshes (each refresh syncs the GPU once)
# What a checkpoint must hold for --resume to continue exactly.
RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "metrics", "best", "rng")


@dataclass
class TrainResult:
    """What a training run left behind."""

    run_dir: Path
    best_pupil_iou: float
    best_miou: float
    epochs_run: int
    onnx_path: Path | None
    best_epoch: int = 0
    device: str = "cpu"
    metrics: list[dict] = field(default_factory=list)


@dataclass
class EpochStats:
    """Mean loss over the samples of one pass, and how long it took."""

    loss: float
    samples: int
    seconds: float


@dataclass
class EvalStats:
    """Validation loss and IoU accumulated over the whole split."""

    loss: float
    iou: list[float]
    miou: float
    samples: int


def resolve_device(name: str) -> torch.device:
    """Return the torch device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises:
        VasegError: the named device is not available here.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VasegError(f"Unknown --device {name!r}. Use auto, cpu, cuda, cuda:N or mps.", exit_code=2) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VasegError(f"--device {name} asked for CUDA, but this torch ({torch.__version__}) sees no CUDA GPU. Use --device cpu or auto.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VasegError(f"--device {name} asked for Apple MPS, which is not available here. Use --device cpu or auto.")
    return device


def amp_dtype_for(device: torch.device, amp: bool) -> torch.dtype | None:
    """Return the autocast dtype (bfloat16 where supported, else float16) on CUDA with ``amp``; None otherwise."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def resolve_dataset(settings: Settings) -> Path:
    """Return the local folder of parquet shards to train on, downloading from the Hub when the source says so."""
    folder = settings.local_training_folder()
    if folder is None:
        from visionassist_seg.hub import download_dataset

        return download_dataset(settings.hf_repo, revision=settings.hf_revision)
    if not folder.is_dir():
        raise VasegError(
            f"Dataset folder {folder} does not exist. Pass --dataset a `vaseg precompute` output folder, "
            "or --hf-repo a Hub dataset id."
        )
    return folder


def to_device(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    """Return the batch on ``device``: image as float (channels_last if asked), label as int64."""
    non_blocking = device.type == "cuda"
    out = {name: tensor.to(device, non_blocking=non_blocking) for name, tensor in batch.items()}
    image = out["image"].float()
    out["image"] = image.contiguous(memory_format=torch.channels_last) if channels_last else image
    out["label"] = out["label"].long()
    return out


def train_one_epoch(
    model: torch.nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    *,
    alpha: float,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    on_progress: Callable[[int, float], None] | None = None,
    epoch: int = 1,
) -> EpochStats:
    """Return the sample-weighted mean training loss of one pass over ``batches`` (epoch ``epoch``, 1-based).

    Raises:
        VasegError: a step's loss was NaN or infinite (the error names the epoch and the first such step).
    """
    model.train()
    start = time.perf_counter()
    # Summed on the device; read back only every few batches so the GPU never waits on the host.
    total = torch.zeros((), device=device, dtype=torch.float64)
    # The first step whose loss was not finite (0: none yet), kept on the device for the same reason.
    first_bad = torch.zeros((), device=device, dtype=torch.int64)
    samples = 0
    for step, batch in enumerate(batches, 1):
        batch = to_device(batch, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(batch["image"])
        loss = combined_loss(logits, batch["label"], batch["spatial_weights"], batch["dist_map"], alpha)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        n = batch["image"].shape[0]
        total += loss.detach() * n
        first_bad = torch.where((first_bad == 0) & ~torch.isfinite(loss.detach()), step, first_bad)
        samples += n
        if step % PROGRESS_EVERY == 0:
            _stop_if_diverged(int(first_bad), epoch, optimizer)
            if on_progress is not None:
                on_progress(samples, float(total) / samples)
    if samples == 0:
        raise VasegError("The training split has no rows. Check --dataset/--hf-repo and --limit.")
    _stop_if_diverged(int(first_bad), epoch, optimizer)
    loss = float(total) / samples
    if on_progress is not None:
        on_progress(samples, loss)
    return EpochStats(loss, samples, time.perf_counter() - start)


def _stop_if_diverged(first_bad_step: int, epoch: int, optimizer: torch.optim.Optimizer, where: str = "") -> None:
    """Raise when training produced a NaN or infinite loss or weights; nothing of that epoch is saved.

    ``first_bad_step`` is the first training step (1-based) with a non-finite loss, 0 for
    none; ``where`` names another place the non-finite value showed (validation, weights).
    """
    if not first_bad_step and not where:
        return
    place = f"step {first_bad_step} (the training loss)" if first_bad_step else where
    lr = optimizer.param_groups[0]["lr"]
    raise VasegError(
        f"Training diverged: NaN or infinite values at epoch {epoch}, {place}; learning rate {lr:.3g}. "
        "Training stopped; last.pt and best.pt still hold the last finished epoch, never the diverged weights. "
        "Start a new run with a lower --lr (a --resume run keeps its checkpoint's --lr), or check the dataset "
        "with `vaseg validate`."
    )


def _check_finite_epoch(model: torch.nn.Module, val_loss: float, epoch: int, optimizer: torch.optim.Optimizer) -> None:
    """Raise (via `_stop_if_diverged`) when the validation loss or any weight is not finite, before anything is saved."""
    if not np.isfinite(val_loss):
        _stop_if_diverged(0, epoch, optimizer, "on validation (the validation loss)")
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    if not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        _stop_if_diverged(0, epoch, optimizer, "in the weights after the last step")


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    *,
    alpha: float,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> EvalStats:
    """Return validation loss and per-class IoU summed over the split.

    When batches carry ``label_full`` (training below full resolution), IoU is measured
    at 400x640 on bilinearly upsampled logits, exactly as the exported model predicts.
    """
    model.eval()
    iou = IoUAccumulator(2)
    total = torch.zeros((), device=device, dtype=torch.float64)
    samples = 0
    for batch in batches:
        batch = to_device(batch, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(batch["image"])
        logits = logits.float()
        loss = combined_loss(logits, batch["label"], batch["spatial_weights"], batch["dist_map"], alpha)
        n = batch["image"].shape[0]
        total += loss * n
        samples += n
        if "label_full" in batch:
            iou.update(upsample_logits(logits, (HEIGHT, WIDTH)).argmax(1), batch["label_full"])
        else:
            iou.update(logits.argmax(1), batch["label"])
    if samples == 0:
        raise VasegError("The validation split has no rows. Check --dataset/--hf-repo and --limit.")
    return EvalStats(float(total) / samples, iou.per_class(), iou.mean(), samples)


def capture_rng() -> dict:
    """Return the states of every random generator training touches (torch, CUDA, numpy, random)."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state_to_lists(np.random.get_state(legacy=False)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Restore the generator states saved by `capture_rng`."""
    torch.set_rng_state(state["torch"])
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {"key": np.asarray(state["numpy"]["state"]["key"], dtype=np.uint32), "pos": state["numpy"]["state"]["pos"]}
    np.random.set_state(numpy_state)
    random.setstate(_as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state_to_lists(state: dict) -> dict:
    # Plain lists and ints, so the checkpoint loads with torch.load(weights_only=True).
    return {**state, "state": {"key": state["state"]["key"].tolist(), "pos": int(state["state"]["pos"])}}


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a crash mid-write leaves the previous file intact)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Return a training checkpoint written by `save_checkpoint`, with every key a resume needs.

    Raises:
        VasegError: the file is missing or unreadable, holds weights only (a state dict or an
            ONNX file: use ``--init-from``), or lacks some of `RESUME_KEYS`.
    """
    if not Path(path).is_file():
        raise VasegError(f"Checkpoint {path} does not exist. Pass --resume the last.pt of an earlier run.")
    if not is_torch_file(path):
        raise _weights_only(path, "an ONNX file")
    state = read_torch_file(path, device)
    if is_state_dict(state):
        raise _weights_only(path, "a plain state dict")
    if not isinstance(state, dict):
        raise VasegError(f"{path} is not a vaseg training checkpoint. Pass --resume a last.pt written by `vaseg train`.")
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        hint = f" To start a new run from its weights, pass --init-from {path}." if is_state_dict(state.get("model")) else ""
        raise VasegError(
            f"Checkpoint {path} lacks {', '.join(missing)}, which --resume needs to continue a run exactly. "
            f"Pass --resume a last.pt written by `vaseg train`.{hint}"
        )
    return state


def _weights_only(path: Path, what: str) -> VasegError:
    return VasegError(
        f"{path} is {what}: model weights without the optimiser, scheduler and epoch that --resume continues. "
        f"To start a new run from these weights, pass --init-from {path} instead of --resume."
    )


def init_weights(model: torch.nn.Module, path: Path) -> None:
    """Load the weights of ``path`` (checkpoint, state dict or ONNX) into ``model`` for a fresh run."""
    weights = read_weights(path)
    load_state(model, weights.state, path)
    console.print(f"Starting from the weights in {path} ({weights.kind}): new optimiser, epoch 0.", highlight=False)


def write_metrics(path: Path, rows: list[dict]) -> None:
    """Rewrite metrics.csv with one row per finished epoch (rewritten whole, so resume cannot duplicate rows)."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


class MlflowRun:
    """Logs params, per-epoch metrics and artifacts to MLflow when it is installed and MLFLOW_TRACKING_URI is set."""

    def __init__(self, settings: Settings, run_name: str) -> None:
        self.mlflow = None
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            return
        try:
            import mlflow
        except ImportError:
            return
        self.mlflow = mlflow
        mlflow.start_run(run_name=run_name)
        params = {k: v for k, v in settings.masked_dump().items() if not k.startswith(("hf_token", "modal_"))}
        mlflow.log_params({k: str(v) for k, v in params.items()})

    def log_epoch(self, row: dict) -> None:
        if self.mlflow is not None:
            self.mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def finish(self, run_dir: Path) -> None:
        if self.mlflow is not None:
            self.mlflow.log_artifacts(str(run_dir))
            self.mlflow.end_run()


def _progress(enabled: bool):  # -> rich.progress.Progress
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        console=err_console,
        transient=True,
        disable=not enabled,
    )


def _compile(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise VasegError("--compile on CPU needs a C++ compiler on PATH (g++ or clang++). Install one or pass --no-compile.")
    return torch.compile(model)


def _announce_legacy(indexes: dict[str, SplitIndex], folder: Path) -> None:
    legacy = sum(len(index.legacy_shards) for index in indexes.values())
    if legacy:
        err_console.print(
            styled("Legacy dataset format", "yellow", f" in {folder}: {legacy} shard(s) have no 'preprocessed' column "
            "(flat lists, raw images). Gamma + CLAHE are applied at load time; re-run `vaseg precompute` "
            "for faster loading."),
            highlight=False,
        )


def _write_config(settings: Settings, run_dir: Path, extra: dict) -> None:
    config = {**settings.masked_dump(), **extra}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")


def train(settings: Settings, *, progress: bool = True) -> TrainResult:
    """Train ShallowNet as `settings` say; return where the run's files are and its best validation IoU.

    Writes into ``settings.run_dir``: config.json, metrics.csv, last.pt, best.pt,
    best.onnx and plots/, holding the folder's lock for the whole run so that a second
    training into the same folder stops at once. With ``settings.resume`` it continues
    that checkpoint exactly, with the checkpoint's data and recipe settings (see
    `visionassist_seg.train.resume`).

    Raises:
        VasegError: the run folder cannot be made or is in use; a resume setting conflicts
            with the checkpoint (exit 2); training diverged; bad data or checkpoint.
    """
    run_dir = Path(settings.run_dir)
    make_run_dir(run_dir)
    with folder_lock(run_dir, "training"):
        if settings.resume is not None:
            settings = resumed_settings(settings, load_checkpoint(settings.resume, torch.device("cpu")))
        return _train_in_locked_folder(settings, progress)


def make_run_dir(run_dir: Path) -> None:
    """Create the run folder (and its parents).

    Raises:
        VasegError: it cannot be created (a regular file in the way, no permission, a name too long, ...).
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise VasegError(
            f"Cannot create the run folder {run_dir}: {reason}. Pass --output-dir a folder you can write to "
            "(its parents must be folders, not files)."
        ) from None


def _train_in_locked_folder(settings: Settings, progress: bool) -> TrainResult:
    """Run `train` once the run folder is locked and the settings are final."""
    device = resolve_device(settings.device)
    amp_dtype = amp_dtype_for(device, settings.amp)
    channels_last = device.type in ("cpu", "cuda")
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    random.seed(settings.seed)

    folder = resolve_dataset(settings)
    indexes = index_dataset(folder, settings.train_limit)
    _announce_legacy(indexes, folder)
    run_dir = Path(settings.run_dir)
    recipe = recipe_of(settings, folder)
    height, width = scaled_size(settings.scale)

    model = ShallowNet(dropout=settings.dropout).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    parameters = count_parameters(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=settings.patience)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    start_epoch, history, best = 0, [], {"pupil_iou": -1.0, "miou": 0.0, "epoch": 0}
    if settings.resume is not None and settings.init_from is not None:
        raise VasegError("Pass either --resume (continue a run) or --init-from (a new run from weights), not both.", exit_code=2)
    if settings.init_from is not None:
        init_weights(model, settings.init_from)
    if settings.resume is not None:
        state = load_checkpoint(settings.resume, device)
        load_state(model, state["model"], settings.resume)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history, best = int(state["epoch"]), list(state["metrics"]), dict(state["best"])
        restore_rng(state["rng"])
        console.print(f"Resuming {settings.resume} after epoch {start_epoch}.", highlight=False)

    _write_config(
        settings,
        run_dir,
        {"resolved_device": str(device), "amp_dtype": str(amp_dtype), "dataset_dir": str(folder),
         "train_rows": indexes["train"].rows, "validation_rows": indexes["validation"].rows,
         "train_height": height, "train_width": width, "parameters": parameters},
    )  # fmt: skip
    net = _compile(model, device) if settings.compile else model
    train_data = PupilDataset(indexes["train"], train=True, seed=settings.seed, scale=settings.scale)
    val_data = PupilDataset(
        indexes["validation"], train=False, seed=settings.seed, scale=settings.scale, full_labels=settings.scale < 1
    )
    workers = settings.workers
    pin = device.type == "cuda"
    mlflow_run = MlflowRun(settings, run_dir.name)
    console.print(
        f"Training ShallowNet ({parameters:,} parameters) on {device} at {height}x{width}: "
        f"{indexes['train'].rows} train / {indexes['validation'].rows} validation samples, "
        f"epochs {start_epoch + 1}..{settings.epochs}, batch {settings.batch_size}, {workers} loader workers.",
        highlight=False,
    )
    train_loader = make_loader(train_data, settings.batch_size, workers, pin_memory=pin)
    val_loader = make_loader(val_data, settings.batch_size, workers, pin_memory=pin)
    with _progress(progress) as bar, stopping_workers(train_loader, val_loader):
        for epoch in range(start_epoch, settings.epochs):
            alpha = alpha_at(epoch, settings.epochs)
            lr = optimizer.param_groups[0]["lr"]
            task = bar.add_task(f"epoch {epoch + 1}/{settings.epochs}", total=indexes["train"].rows, info="")
            report = _progress_callback(bar, task)
            train_loader.sampler.set_epoch(epoch)
            stats = train_one_epoch(
                net, train_loader, optimizer, scaler,
                alpha=alpha, device=device, amp_dtype=amp_dtype, channels_last=channels_last, on_progress=report,
                epoch=epoch + 1,
            )  # fmt: skip
            bar.update(task, description=f"epoch {epoch + 1} validation")
            val = evaluate(
                net, val_loader,
                alpha=alpha, device=device, amp_dtype=amp_dtype, channels_last=channels_last,
            )  # fmt: skip
            bar.remove_task(task)
            _check_finite_epoch(model, val.loss, epoch + 1, optimizer)
            scheduler.step(val.loss)
            row = {
                "epoch": epoch + 1, "train_loss": round(stats.loss, 6), "val_loss": round(val.loss, 6),
                "val_pupil_iou": round(val.iou[1], 6), "val_background_iou": round(val.iou[0], 6),
                "val_miou": round(val.miou, 6), "challenge_score": round(challenge_score(val.miou, parameters), 6),
                "lr": lr, "alpha": round(alpha, 6), "seconds": round(stats.seconds, 2),
                "samples_per_s": round(stats.samples / max(stats.seconds, 1e-9), 2),
            }  # fmt: skip
            history.append(row)
            improved = val.iou[1] > best["pupil_iou"]
            if improved:
                best = {"pupil_iou": val.iou[1], "miou": val.miou, "epoch": epoch + 1}
            state = {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch + 1, "settings": settings.masked_dump(),
                "metrics": history, "best": best, "rng": capture_rng(), "recipe": recipe,
                "model_config": {"dropout": settings.dropout, "scale": settings.scale, "height": height, "width": width},
            }  # fmt: skip
            save_checkpoint(run_dir / "last.pt", state)
            if improved:
                save_checkpoint(run_dir / "best.pt", state)
            write_metrics(run_dir / "metrics.csv", history)
            mlflow_run.log_epoch(row)
            console.print(
                f"epoch {epoch + 1}/{settings.epochs}  train_loss {stats.loss:.4f}  val_loss {val.loss:.4f}  "
                f"pupil IoU {val.iou[1]:.4f}  mIoU {val.miou:.4f}  lr {lr:.1e}  alpha {alpha:.3f}  "
                f"{stats.seconds:.1f}s  {row['samples_per_s']:.1f} samples/s" + ("  *best*" if improved else ""),
                highlight=False,
            )
    onnx_path = _finish(run_dir, history, indexes["validation"], settings, device)
    mlflow_run.finish(run_dir)
    return TrainResult(
        run_dir=run_dir, best_pupil_iou=float(best["pupil_iou"]), best_miou=float(best["miou"]),
        epochs_run=max(0, settings.epochs - start_epoch), onnx_path=onnx_path, best_epoch=int(best["epoch"]),
        device=str(device), metrics=history,
    )  # fmt: skip


def _progress_callback(bar, task) -> Callable[[int, float], None]:
    started = time.perf_counter()

    def report(samples: int, loss: float) -> None:
        rate = samples / max(time.perf_counter() - started, 1e-9)
        bar.update(task, completed=samples, info=f"loss {loss:.4f}  {rate:.1f} samples/s")

    return report


def _finish(run_dir: Path, history: list[dict], val_index: SplitIndex, settings: Settings, device: torch.device) -> Path | None:
    """Export best.pt to best.onnx and draw the plots; return the ONNX path (None if no epoch finished)."""
    best_path = run_dir / "best.pt"
    if not history or not best_path.is_file():
        return None
    state = load_checkpoint(best_path, torch.device("cpu"))
    model = ShallowNet(dropout=settings.dropout)
    load_state(model, state["model"], best_path)
    model.eval()
    scale = float(state["model_config"]["scale"])
    images, labels = _overlay_samples(val_index)
    onnx_path = run_dir / "best.onnx"
    # Checked on real validation frames: what the device will feed it.
    difference = export_onnx(model, onnx_path, scale=scale, seed=settings.seed, frames=images[:2, None].astype(np.float32))
    console.print(f"Exported {onnx_path} (onnxruntime vs torch max logit difference {difference:.1e}).", highlight=False)
    from visionassist_seg.train.plots import plot_curves, plot_overlays

    plots = run_dir / "plots"
    plot_curves(history, plots)
    with torch.no_grad():
        predictions = DeviceModel(model, scale)(torch.from_numpy(images[:, None].astype(np.float32))).argmax(1).numpy()
    plot_overlays(images, labels, predictions, plots / "overlays.png")
    return onnx_path


def _overlay_samples(index: SplitIndex) -> tuple[np.ndarray, np.ndarray]:
    """Return the first `OVERLAY_IMAGES` images (enhanced as the loader does) and labels of ``index``.

    Reads only those rows' image and label columns from the first slice's row group.
    """
    from visionassist_seg.data.reader import read_batches

    piece = index.slices[0]
    rows = min(OVERLAY_IMAGES, piece.rows)
    columns = ["image", "label"] + ([] if piece.legacy else ["preprocessed"])
    batches = read_batches(Path(piece.path), columns=columns, batch_size=piece.start + rows, row_groups=[piece.row_group])
    try:
        batch = next(batches)
    finally:
        batches.close()
    window = slice(piece.start, piece.start + rows)
    images = batch["image"][window].astype(np.uint8)  # legacy shards may store int64
    labels = batch["label"][window].astype(np.uint8)
    enhance = [True] * rows if piece.legacy else [not flag for flag in batch["preprocessed"][window]]
    images = np.stack([enhance_image(np.ascontiguousarray(im)) if flag else im for im, flag in zip(images, enhance)])
    return images, labels
