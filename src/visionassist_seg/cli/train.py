"""`vaseg train`: train ShallowNet on a precomputed dataset, locally or on Modal (--remote)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from visionassist_seg.cli._common import ConfigOpt, DatasetDirOpt, LimitOpt, RepoOpt, RevisionOpt, SeedOpt, WorkersOpt

if TYPE_CHECKING:
    from visionassist_seg.settings import Settings

EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs. [default: 15]", show_default=False)]
BatchOpt = Annotated[
    Optional[int], typer.Option("--batch-size", min=1, help="Batch size. [default: 32]", show_default=False)
]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate. [default: 1e-3]", show_default=False)]
DeviceOpt = Annotated[
    Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps. [default: auto]", show_default=False)
]
ScaleOpt = Annotated[
    Optional[float],
    typer.Option("--scale", help="Train at this fraction of 400x640 (0 < F <= 1); ONNX still takes 400x640. [default: 1]", show_default=False),
]
RunDirOpt = Annotated[
    Optional[Path],
    typer.Option("--output-dir", help="Run folder. [default: runs/shallownet; with --resume, the checkpoint's folder]", show_default=False),
]
ResumeOpt = Annotated[
    Optional[Path], typer.Option("--resume", help="Continue from this last.pt checkpoint.", show_default=False)
]
InitFromOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--init-from",
        help="Start a new run (fresh optimiser, epoch 0) from these weights: a best.pt/last.pt, a saved state dict "
        "or the reference scripts' ONNX export.",
        show_default=False,
    ),
]
AmpOpt = Annotated[
    Optional[bool], typer.Option("--amp/--no-amp", help="Mixed precision on CUDA. [default: on]", show_default=False)
]
CompileOpt = Annotated[
    Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the model. [default: off]", show_default=False)
]
RemoteOpt = Annotated[bool, typer.Option("--remote", help="Train on a Modal GPU instead of this machine.")]
GpuOpt = Annotated[
    Optional[str], typer.Option("--gpu", help="Modal GPU type with --remote (L4, A100, H100, ...). [default: L4]", show_default=False)
]
DetachOpt = Annotated[bool, typer.Option("--detach", help="With --remote: start the run and return at once.")]


def train(
    dataset: DatasetDirOpt = None,
    hf_repo: RepoOpt = None,
    revision: RevisionOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    device: DeviceOpt = None,
    workers: WorkersOpt = None,
    seed: SeedOpt = None,
    scale: ScaleOpt = None,
    limit: LimitOpt = None,
    output_dir: RunDirOpt = None,
    resume: ResumeOpt = None,
    init_from: InitFromOpt = None,
    amp: AmpOpt = None,
    compile: CompileOpt = None,
    remote: RemoteOpt = False,
    gpu: GpuOpt = None,
    detach: DetachOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Train the ShallowNet pupil segmenter; leave checkpoints, metrics.csv, plots and best.onnx in the run folder.

    Data: --dataset DIR (a `vaseg precompute` output) or --hf-repo ID (fetched into the Hub cache). Without either: the configured dataset folder if it holds shards, else the configured Hub repository.

    --resume RUN/last.pt continues a run with its checkpoint's data and recipe (dataset, --scale, --limit, --batch-size, --lr, --seed, [train] dropout and patience); giving one of those with another value is an error. --epochs (to extend the run), --device, --workers, --amp and --compile may change.

    --init-from MODEL starts from saved weights (best.pt, a state dict in the reference's names, or the reference's ONNX) with a fresh optimiser at epoch 0.

    Example: `vaseg train --dataset precompute_output --epochs 15 --output-dir runs/shallownet`

    Example: `vaseg train --dataset ./ds --init-from old_weights.onnx --epochs 5`
    """
    from visionassist_seg.console import console
    from visionassist_seg.errors import VasegError
    from visionassist_seg.settings import load_settings

    if dataset is not None and hf_repo is not None:
        raise VasegError("Pass either --dataset DIR or --hf-repo ID, not both.", exit_code=2)
    if detach and not remote:
        raise VasegError("--detach only applies to --remote runs; add --remote or drop --detach.", exit_code=2)
    if output_dir is None and resume is not None:
        output_dir = resume.parent
    source = "local" if dataset is not None else "hub" if hf_repo is not None else None
    settings = load_settings(
        config, workers=workers, seed=seed, dataset={"dir": dataset}, hub={"repo": hf_repo, "revision": revision},
        train={
            "source": source, "epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device, "scale": scale,
            "limit": limit, "run_dir": output_dir, "resume": resume, "init_from": init_from, "amp": amp,
            "compile": compile,
        },
        modal={"gpu": gpu},
    )  # fmt: skip
    if settings.train.resume is not None and settings.train.init_from is not None:
        raise VasegError("Pass either --resume (continue a run) or --init-from (a new run from weights), not both.", exit_code=2)
    if remote:
        _train_on_modal(settings, detach=detach)
        return
    from visionassist_seg.extras import require_train_extra

    require_train_extra("Training on this machine (`vaseg train` without --remote)", ("torch", "matplotlib"))
    from visionassist_seg.train.loop import train as run_training

    result = run_training(settings)
    console.print(
        f"Best validation pupil IoU {result.best_pupil_iou:.4f} (mIoU {result.best_miou:.4f}) at epoch "
        f"{result.best_epoch}; run folder {result.run_dir}; ONNX model {result.onnx_path}.",
        highlight=False,
    )


def _train_on_modal(settings: Settings, *, detach: bool) -> None:
    """Start the run on Modal (a --resume checkpoint's recipe is checked here first, before anything is uploaded)."""
    from visionassist_seg.console import console
    from visionassist_seg.remote import train_remote

    if settings.train.resume is not None:  # read without torch: a core install trains remotely too
        from visionassist_seg.train.checkpoint_record import read_checkpoint_records
        from visionassist_seg.train.resume import resumed_settings

        settings = resumed_settings(settings, read_checkpoint_records(settings.train.resume))
    outcome = train_remote(settings, detach=detach)
    console.print(f"Remote run: {outcome}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `vaseg train` to ``app``."""
    app.command("train")(train)
