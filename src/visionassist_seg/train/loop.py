"""ShallowNet training: `train` runs `train_one_epoch` and `evaluate` epoch after epoch, checkpointing each.

Read top to bottom: the two passes over the data, then `train`, which locks the run
folder, builds the model and the data loaders, resumes or starts from weights, and per
epoch trains, validates, stops on non-finite values before anything is saved, writes
last.pt/best.pt (`train.checkpoint`) and metrics.csv (`train.records`), and at the end
exports best.onnx (`train.finish`). `train(settings)` reads everything from `Settings`
and never touches the CLI, so the same call runs locally and inside a Modal container.
"""

from __future__ import annotations

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
from visionassist_seg.folder_lock import folder_lock, make_folder
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.settings import Settings
from visionassist_seg.train.checkpoint import RunState, load_checkpoint, save_checkpoint
from visionassist_seg.train.device import amp_dtype_for, resolve_device, to_device
from visionassist_seg.train.export import upsample_logits
from visionassist_seg.train.finish import export_best
from visionassist_seg.train.loader import PupilDataset, make_loader, stopping_workers
from visionassist_seg.train.model import scaled_size
from visionassist_seg.train.losses import alpha_at, combined_loss
from visionassist_seg.train.metrics import IoUAccumulator
from visionassist_seg.train.scores import challenge_score
from visionassist_seg.train.model import ShallowNet, count_parameters
from visionassist_seg.train.records import MlflowRun, write_config, write_metrics
from visionassist_seg.train.resume import recipe_of, resumed_settings
from visionassist_seg.train.split_index import SplitIndex, index_dataset
from visionassist_seg.train.weights import load_state, read_weights

PROGRESS_EVERY = 5  # batches between progress refreshes (each refresh syncs the GPU once)


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


@dataclass(frozen=True)
class RunDevice:
    """Where and how batches run: the device, its autocast dtype (None: float32) and the memory layout."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool


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


def train(settings: Settings, *, progress: bool = True) -> TrainResult:
    """Train ShallowNet as `settings` say; return where the run's files are and its best validation IoU.

    Writes into ``settings.train.run_dir``: config.json, metrics.csv, last.pt, best.pt,
    best.onnx and plots/, holding the folder's lock for the whole run so that a second
    training into the same folder stops at once. With ``settings.train.resume`` it continues
    that checkpoint exactly, with the checkpoint's data and recipe settings (see
    `visionassist_seg.train.resume`).

    Raises:
        VasegError: the run folder cannot be made or is in use; a resume setting conflicts
            with the checkpoint (exit 2); training diverged; bad data or checkpoint.
    """
    if settings.train.resume is not None and settings.train.init_from is not None:
        raise VasegError("Pass either --resume (continue a run) or --init-from (a new run from weights), not both.", exit_code=2)
    run_dir = Path(settings.train.run_dir)
    make_folder(run_dir, what="the run folder", option="--output-dir")
    with folder_lock(run_dir, "training"):
        if settings.train.resume is not None:
            settings = resumed_settings(settings, load_checkpoint(settings.train.resume, torch.device("cpu")))
        return _train_in_locked_folder(settings, progress)


def resolve_dataset(settings: Settings) -> Path:
    """Return the local folder of parquet shards to train on, downloading from the Hub when the source says so."""
    from visionassist_seg.data.training_folder import local_training_folder

    folder = local_training_folder(settings)
    if folder is None:
        from visionassist_seg.hub import download_dataset

        return download_dataset(settings.hub.repo, revision=settings.hub.revision)
    if not folder.is_dir():
        raise VasegError(
            f"Dataset folder {folder} does not exist. Pass --dataset a `vaseg precompute` output folder, "
            "or --hf-repo a Hub dataset id."
        )
    return folder


def _train_in_locked_folder(settings: Settings, progress: bool) -> TrainResult:
    """Run `train` once the run folder is locked and the settings are final."""
    device = resolve_device(settings.train.device)
    how = RunDevice(device, amp_dtype_for(device, settings.train.amp), channels_last=device.type in ("cpu", "cuda"))
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    random.seed(settings.seed)
    folder = resolve_dataset(settings)
    indexes = index_dataset(folder, settings.train.limit)
    _announce_legacy(indexes, folder)
    run_dir = Path(settings.train.run_dir)
    height, width = scaled_size(settings.train.scale)
    run = _start_run(settings, how)
    parameters = count_parameters(run.model)
    write_config(
        settings,
        run_dir,
        {"resolved_device": str(device), "amp_dtype": str(how.amp_dtype), "dataset_dir": str(folder),
         "train_rows": indexes["train"].rows, "validation_rows": indexes["validation"].rows,
         "train_height": height, "train_width": width, "parameters": parameters},
    )  # fmt: skip
    net = _compile(run.model, device) if settings.train.compile else run.model
    train_loader, val_loader = _loaders(indexes, settings, device)
    mlflow_run = MlflowRun(settings, run_dir.name)
    console.print(
        f"Training ShallowNet ({parameters:,} parameters) on {device} at {height}x{width}: "
        f"{indexes['train'].rows} train / {indexes['validation'].rows} validation samples, "
        f"epochs {run.epoch + 1}..{settings.train.epochs}, batch {settings.train.batch_size}, {settings.workers} loader workers.",
        highlight=False,
    )
    extra = {
        "settings": settings.masked_dump(), "recipe": recipe_of(settings, folder),
        "model_config": {"dropout": settings.train.dropout, "scale": settings.train.scale, "height": height, "width": width},
    }  # fmt: skip
    start_epoch = run.epoch
    with _progress(progress) as bar, stopping_workers(train_loader, val_loader):
        for epoch in range(start_epoch, settings.train.epochs):
            task = bar.add_task(f"epoch {epoch + 1}/{settings.train.epochs}", total=indexes["train"].rows, info="")
            row, improved = _fit_epoch(run, net, (train_loader, val_loader), settings, how, (bar, task))
            bar.remove_task(task)
            _save_epoch(run, run_dir, improved, extra)
            mlflow_run.log_epoch(row)
            _print_epoch(row, settings.train.epochs, improved)
    onnx_path = export_best(run_dir, run.history, indexes["validation"], settings)
    mlflow_run.finish(run_dir)
    return TrainResult(
        run_dir=run_dir, best_pupil_iou=float(run.best["pupil_iou"]), best_miou=float(run.best["miou"]),
        epochs_run=max(0, settings.train.epochs - start_epoch), onnx_path=onnx_path, best_epoch=int(run.best["epoch"]),
        device=str(device), metrics=run.history,
    )  # fmt: skip


def _start_run(settings: Settings, how: RunDevice) -> RunState:
    """Return the run's model, optimiser, scheduler and scaler on the device: new, from ``--init-from`` weights, or resumed."""
    model = ShallowNet(dropout=settings.train.dropout).to(how.device)
    if how.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.train.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=settings.train.patience)
    scaler = torch.amp.GradScaler(how.device.type, enabled=how.amp_dtype == torch.float16)
    run = RunState(model, optimizer, scheduler, scaler)
    if settings.train.init_from is not None:
        init_weights(model, settings.train.init_from)
    if settings.train.resume is not None:
        run.resume(settings.train.resume, how.device)
        console.print(f"Resuming {settings.train.resume} after epoch {run.epoch}.", highlight=False)
    return run


def init_weights(model: torch.nn.Module, path: Path) -> None:
    """Load the weights of ``path`` (checkpoint, state dict or ONNX) into ``model`` for a fresh run."""
    weights = read_weights(path)
    load_state(model, weights.state, path)
    console.print(f"Starting from the weights in {path} ({weights.kind}): new optimiser, epoch 0.", highlight=False)


def _loaders(indexes: dict[str, SplitIndex], settings: Settings, device: torch.device) -> tuple:
    """Return the train and validation DataLoaders (validation keeps 400x640 labels below full scale)."""
    train_data = PupilDataset(indexes["train"], train=True, seed=settings.seed, scale=settings.train.scale)
    val_data = PupilDataset(
        indexes["validation"], train=False, seed=settings.seed, scale=settings.train.scale, full_labels=settings.train.scale < 1
    )
    pin = device.type == "cuda"
    return (
        make_loader(train_data, settings.train.batch_size, settings.workers, pin_memory=pin),
        make_loader(val_data, settings.train.batch_size, settings.workers, pin_memory=pin),
    )


def _fit_epoch(
    run: RunState, net: torch.nn.Module, loaders: tuple, settings: Settings, how: RunDevice, progress: tuple
) -> tuple[dict, bool]:
    """Train and validate epoch ``run.epoch + 1``; advance ``run`` and return its metrics row and whether it is the best.

    ``progress`` is the (bar, task) the epoch reports to.

    Raises:
        VasegError: a loss or weight went NaN or infinite (``run`` is then left as it was saved).
    """
    epoch = run.epoch
    train_loader, val_loader = loaders
    alpha = alpha_at(epoch, settings.train.epochs)
    lr = run.optimizer.param_groups[0]["lr"]
    train_loader.sampler.set_epoch(epoch)
    stats = train_one_epoch(
        net, train_loader, run.optimizer, run.scaler, alpha=alpha, device=how.device, amp_dtype=how.amp_dtype,
        channels_last=how.channels_last, on_progress=_progress_callback(*progress), epoch=epoch + 1,
    )  # fmt: skip
    progress[0].update(progress[1], description=f"epoch {epoch + 1} validation")
    val = evaluate(net, val_loader, alpha=alpha, device=how.device, amp_dtype=how.amp_dtype, channels_last=how.channels_last)
    _check_finite_epoch(run.model, val.loss, epoch + 1, run.optimizer)
    run.scheduler.step(val.loss)
    parameters = count_parameters(run.model)
    row = {
        "epoch": epoch + 1, "train_loss": round(stats.loss, 6), "val_loss": round(val.loss, 6),
        "val_pupil_iou": round(val.iou[1], 6), "val_background_iou": round(val.iou[0], 6),
        "val_miou": round(val.miou, 6), "challenge_score": round(challenge_score(val.miou, parameters), 6),
        "lr": lr, "alpha": round(alpha, 6), "seconds": round(stats.seconds, 2),
        "samples_per_s": round(stats.samples / max(stats.seconds, 1e-9), 2),
    }  # fmt: skip
    run.epoch, improved = epoch + 1, val.iou[1] > run.best["pupil_iou"]
    run.history.append(row)
    if improved:
        run.best = {"pupil_iou": val.iou[1], "miou": val.miou, "epoch": epoch + 1}
    return row, improved


def _save_epoch(run: RunState, run_dir: Path, improved: bool, extra: dict) -> None:
    """Write last.pt (and best.pt when the epoch improved) and metrics.csv for the epoch just finished."""
    state = run.checkpoint(**extra)
    save_checkpoint(run_dir / "last.pt", state)
    if improved:
        save_checkpoint(run_dir / "best.pt", state)
    write_metrics(run_dir / "metrics.csv", run.history)


def _print_epoch(row: dict, epochs: int, improved: bool) -> None:
    console.print(
        f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
        f"pupil IoU {row['val_pupil_iou']:.4f}  mIoU {row['val_miou']:.4f}  lr {row['lr']:.1e}  alpha {row['alpha']:.3f}  "
        f"{row['seconds']:.1f}s  {row['samples_per_s']:.1f} samples/s" + ("  *best*" if improved else ""),
        highlight=False,
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


def _progress_callback(bar, task) -> Callable[[int, float], None]:
    started = time.perf_counter()

    def report(samples: int, loss: float) -> None:
        rate = samples / max(time.perf_counter() - started, 1e-9)
        bar.update(task, completed=samples, info=f"loss {loss:.4f}  {rate:.1f} samples/s")

    return report

