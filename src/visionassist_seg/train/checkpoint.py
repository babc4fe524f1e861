"""Training checkpoints: the full state of a run (`RunState`), written atomically and read back for ``--resume``.

A checkpoint holds the model, optimiser, scheduler and gradient scaler, the finished
epoch, the metrics so far, the best epoch and every random generator's state, plus the
run's settings, recipe and model configuration, so that a resumed run continues exactly
as an uninterrupted one would have (as torchvision's reference and nanoGPT keep theirs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.train.checkpoint_record import check_resume_keys
from visionassist_seg.train.weights import is_state_dict, is_torch_file, load_state, read_torch_file


@dataclass
class RunState:
    """What a checkpoint restores: the model with its optimiser, scheduler and scaler, and the run's progress.

    ``epoch`` counts finished epochs; ``history`` holds one metrics row per finished
    epoch; ``best`` is the best validation pupil IoU so far with its mIoU and epoch.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"pupil_iou": -1.0, "miou": 0.0, "epoch": 0})

    def checkpoint(self, **extra) -> dict:
        """Return the checkpoint of the run as it stands now (random generators included), plus ``extra`` keys."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": self.epoch,
            "metrics": self.history, "best": self.best, "rng": capture_rng(), **extra,
        }  # fmt: skip

    def resume(self, path: Path, device: torch.device) -> None:
        """Continue from the checkpoint at ``path``: every state, the progress and the random generators.

        Raises:
            VasegError: see `load_checkpoint`; the weights do not fit the model.
        """
        state = load_checkpoint(path, device)
        load_state(self.model, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.history, self.best = int(state["epoch"]), list(state["metrics"]), dict(state["best"])
        restore_rng(state["rng"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a crash mid-write leaves the previous file intact)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Return a training checkpoint written by `save_checkpoint`, with every key a resume needs.

    Raises:
        VasegError: the file is missing or unreadable, holds weights only (a state dict or an
            ONNX file: use ``--init-from``), or lacks some of `checkpoint_record.RESUME_KEYS`.
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
    hint = f" To start a new run from its weights, pass --init-from {path}." if is_state_dict(state.get("model")) else ""
    check_resume_keys(state, path, hint)
    return state


def _weights_only(path: Path, what: str) -> VasegError:
    return VasegError(
        f"{path} is {what}: model weights without the optimiser, scheduler and epoch that --resume continues. "
        f"To start a new run from these weights, pass --init-from {path} instead of --resume."
    )


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
