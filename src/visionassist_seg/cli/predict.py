"""`vaseg predict`: pupil centre, ellipse, area and confidence for images, folders and videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ModelArg = Annotated[Path, typer.Argument(help="best.onnx (or any `vaseg export` ONNX file), or a best.pt checkpoint.", show_default=False)]
InputsArg = Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, BMP), folders of them, or videos OpenCV reads.", show_default=False)]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Rows file: .jsonl or .csv.", show_default=False)]
OverlayOpt = Annotated[
    Optional[Path],
    typer.Option("--overlay", help="Draw mask and ellipse: a folder (PNG per image, MP4 per video) or one FILE.mp4/.avi.", show_default=False),
]
PreprocessedOpt = Annotated[bool, typer.Option("--preprocessed", help="Frames already have gamma + CLAHE (as dataset images do).")]
BatchOpt = Annotated[
    int,
    typer.Option(
        "--batch-size", min=1,
        help="Frames per model call. 1 is fastest on a CPU (a 400x640 batch's activations overflow the caches); raise it on a GPU.",
    ),
]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for inference. [default: all cores]", show_default=False)]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device for a .pt model: auto, cpu, cuda, cuda:N or mps.")]


def predict(
    model: ModelArg,
    inputs: InputsArg,
    output: OutputOpt,
    overlay: OverlayOpt = None,
    preprocessed: PreprocessedOpt = False,
    batch_size: BatchOpt = 1,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Find the pupil in images and video frames: one row per frame with source, frame, pupil, center_x, center_y, axes [major, minor], angle, area and confidence, in the frame's own pixels.

    Raw camera frames get the dataset's gamma + CLAHE; frames that are not 400x640 are resized keeping the aspect ratio and padded. An ONNX model runs on onnxruntime (no torch needed). A bad input is reported and the others go on; the exit code is then 1.

    Examples:

        vaseg predict runs/exp1/best.onnx eye.png frames/ --output pupils.jsonl

        vaseg predict best.onnx session.mp4 --output pupils.csv --overlay session-overlay.mp4

        vaseg predict best.onnx dataset_images/ --preprocessed --output rows.csv --overlay overlays/ --threads 4
    """

    from visionassist_seg.console import console, err_console, item_progress, styled
    from visionassist_seg.errors import VasegError
    from visionassist_seg.infer.models import load_segmenter
    from visionassist_seg.infer.predict import check_output, plan_inputs, run_predictions

    check_output(output)
    segmenter = load_segmenter(model, threads=threads, device=device)
    plan = plan_inputs(inputs)

    def notice(message: str) -> None:
        err_console.print(styled("Note:", "yellow", f" {message}"), highlight=False, soft_wrap=True)

    with item_progress(plan.total, "predict", unit="frames") as advance:
        summary = run_predictions(
            segmenter, plan, output, overlay=overlay, preprocessed=preprocessed, batch_size=batch_size,
            on_frames=advance, on_notice=notice,
        )  # fmt: skip
    console.print(
        f"{summary.frames} frame(s), pupil found in {summary.pupils}; rows in {str(output)}"
        + (f", overlays in {str(overlay)}" if overlay is not None else "") + ".",
        highlight=False,
    )
    if summary.failed:
        names = ", ".join(str(bad.path) for bad in summary.failed)
        raise VasegError(f"{len(summary.failed)} input(s) could not be read ({names}); see the notes above. The other inputs' rows are in {output}.")


def register(app: typer.Typer) -> None:
    """Add `vaseg predict` to ``app``."""
    app.command("predict")(predict)
