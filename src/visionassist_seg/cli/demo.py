"""`vaseg demo`: the whole pipeline on synthetic data in a fresh folder, on this machine's CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from visionassist_seg.cli._common import SeedOpt

DirOpt = Annotated[Path, typer.Option("--dir", help="Folder for the demo's raw data, dataset and run.")]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace the raw, dataset and run folders an earlier demo made in --dir (nothing else).")
]
CountOpt = Annotated[
    Optional[int], typer.Option("--count", min=4, help="Synthetic train samples. [default: 120]", show_default=False)
]
DemoEpochsOpt = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs. [default: 15]", show_default=False)]
DemoScaleOpt = Annotated[
    Optional[float], typer.Option("--scale", min=0.05, max=1.0, help="Training scale. [default: 0.25]", show_default=False)
]
DemoDeviceOpt = Annotated[str, typer.Option("--device", help="Torch device: cpu, auto, cuda or mps.")]


def demo(
    directory: DirOpt = Path("vaseg-demo"),
    overwrite: OverwriteOpt = False,
    count: CountOpt = None,
    epochs: DemoEpochsOpt = None,
    scale: DemoScaleOpt = None,
    seed: SeedOpt = None,
    device: DemoDeviceOpt = "cpu",
) -> None:
    """Run synthetic download, precompute, validate, train and ONNX export end to end (a few minutes on a laptop CPU)."""
    from visionassist_seg.console import console, styled
    from visionassist_seg.extras import require_train_extra

    require_train_extra("`vaseg demo` (it trains on this machine)", ("torch", "matplotlib"))
    from visionassist_seg.pipeline import demo as demo_lib

    result = demo_lib.run_demo(
        directory,
        count=count or demo_lib.DEMO_COUNT,
        epochs=epochs or demo_lib.DEMO_EPOCHS,
        scale=scale or demo_lib.DEMO_SCALE,
        seed=seed or 0,
        device=device,
        overwrite=overwrite,
    )
    total = sum(result.seconds.values())
    console.print(
        styled(f"\nDemo finished in {total:.0f} s.", "bold", f" Validation pupil IoU {result.best_pupil_iou:.4f} "
        f"(mIoU {result.best_miou:.4f}).\n"
        f"  dataset:  {result.dataset_dir}\n"
        f"  run:      {result.run_dir} (metrics.csv, best.pt, last.pt, plots/)\n"
        f"  ONNX:     {result.onnx_path} (input image 1x1x400x640, output logits 1x2x400x640)"),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `vaseg demo` to ``app``."""
    app.command("demo")(demo)
