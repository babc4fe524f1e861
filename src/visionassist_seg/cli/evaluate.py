"""`vaseg evaluate`: score a checkpoint or ONNX model on a dataset split (pupil IoU, mIoU, challenge score, worst samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from visionassist_seg.cli._common import DatasetDirOpt, RepoOpt, RevisionOpt

ModelArg = Annotated[Path, typer.Argument(help="best.pt / last.pt from a `vaseg train` run, or an ONNX file (standard or legacy layout).", show_default=False)]
SplitOpt = Annotated[str, typer.Option("--split", help="Split to evaluate on.")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Also write the report (scores and every sample) as JSON.", show_default=False)]
OverlaysOpt = Annotated[Optional[Path], typer.Option("--overlays", help="Save the worst samples as overlay PNGs in this folder.", show_default=False)]
WorstOpt = Annotated[int, typer.Option("--worst", min=0, help="How many of the lowest-IoU samples to list (and draw).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Samples per batch.")]
LoaderWorkersOpt = Annotated[
    int, typer.Option("--workers", min=0, help="Loader worker processes for a .pt model (0: read in this process); an ONNX model's rows are read in this process.")
]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate only the first N rows of the split.", show_default=False)]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device for a .pt model: auto, cpu, cuda, cuda:N or mps.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for inference. [default: all cores]", show_default=False)]


def evaluate(
    model: ModelArg,
    dataset: DatasetDirOpt = None,
    hf_repo: RepoOpt = None,
    revision: RevisionOpt = None,
    split: SplitOpt = "validation",
    json_file: JsonOpt = None,
    overlays: OverlaysOpt = None,
    worst: WorstOpt = 10,
    batch_size: BatchOpt = 8,
    workers: LoaderWorkersOpt = 0,
    limit: LimitOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
) -> None:
    """Score a model on a dataset split: pupil IoU, mIoU and challenge score (intersections and unions summed over the split, as in training), and per sample IoU, pupil-centre error and pupil-area error, worst first.

    For a run's best.pt this reproduces the run's validation numbers; its best.onnx agrees within 1e-3.

    Examples:

        vaseg evaluate runs/exp1/best.pt --dataset precompute_output

        vaseg evaluate runs/exp1/best.onnx --dataset ds --json report.json --overlays worst/ --worst 8

        vaseg evaluate model.onnx --hf-repo Conner/openeds-precomputed --split validation --limit 500
    """

    from visionassist_seg.console import console, item_progress
    from visionassist_seg.infer.evaluate import dataset_folder, evaluate_model, split_index
    from visionassist_seg.infer.models import load_segmenter
    from visionassist_seg.infer.report import evaluation_tables

    folder = dataset_folder(dataset, hf_repo, revision)
    index = split_index(folder, split, limit)
    segmenter = load_segmenter(model, threads=threads, device=device)
    with item_progress(index.rows, f"evaluate {split}", unit="samples") as advance:
        report = evaluate_model(
            segmenter, index, dataset=str(hf_repo or folder), batch_size=batch_size, workers=workers, worst=worst,
            overlays_dir=overlays, on_samples=advance,
        )  # fmt: skip
    for table in evaluation_tables(report):
        console.print(table)
    if json_file is not None:
        report.write_json(json_file)
        console.print(f"Report written to {json_file}", highlight=False)
    if report.overlays:
        console.print(f"{len(report.overlays)} overlay(s) in {overlays}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `vaseg evaluate` to ``app``."""
    app.command("evaluate")(evaluate)
