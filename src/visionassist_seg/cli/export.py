"""`vaseg export`: write trained weights as an ONNX model, for vaseg's own contract or the live demo's."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class LayoutChoice(str, Enum):
    """The ONNX contracts `vaseg export` can write (see train/export.py)."""

    standard = "standard"
    legacy = "legacy"


ModelArg = Annotated[
    Path,
    typer.Argument(
        help="Weights: a vaseg best.pt/last.pt, a state dict saved with torch.save(model.state_dict()), "
        "or an ONNX file exported by the reference scripts.",
        metavar="MODEL",
        show_default=False,
    ),
]
_SOURCE_NAMES = {"checkpoint": "a vaseg checkpoint", "state dict": "a state dict", "onnx": "an ONNX file"}

OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.", show_default=False)]
LayoutOpt = Annotated[
    LayoutChoice,
    typer.Option(
        "--layout",
        help="standard: input 'image' [batch, 1, 400, 640], values 0..255 after gamma + CLAHE, output 'logits' "
        "[batch, 2, 400, 640] (what `vaseg train` writes). legacy: the live demo's contract, input 'input' "
        "[batch_size, 1, 640, 400] normalised and transposed, output 'output' [batch_size, 2, 640, 400].",
        case_sensitive=False,
    ),
]


def export(model: ModelArg, output: OutputOpt, layout: LayoutOpt = LayoutChoice.standard) -> None:
    """Export weights to ONNX and check the file with onnxruntime against torch on synthetic eye frames.

    A checkpoint from a --scale run keeps its scale: the graph resizes each 400x640 frame to
    the training size and the logits back. The legacy layout undoes the demo's
    normalisation and transposition inside the graph, so the demo shows the upright
    model's prediction.

    Example: `vaseg export runs/shallownet/best.pt --output demo_model.onnx --layout legacy`
    """

    from visionassist_seg.console import console
    from visionassist_seg.extras import require_train_extra

    require_train_extra("`vaseg export`", ("torch",))
    from visionassist_seg.train.export import LAYOUTS, export_model_file

    result = export_model_file(model, output, layout=layout.value)
    spec = LAYOUTS[result.layout]
    rows, columns = spec.frame
    scale = f", resized inside to scale {result.scale:g}" if result.scale < 1 else ""
    message = (
        f"Wrote {result.path} ({result.layout} layout from {_SOURCE_NAMES[result.source_kind]}{scale}): "
        f"'{spec.input_name}' [{spec.batch_axis}, 1, {rows}, {columns}] -> '{spec.output_name}' "
        f"[{spec.batch_axis}, 2, {rows}, {columns}]; onnxruntime vs torch max logit difference {result.difference:.1e}."
    )
    # Escaped whole: the path is the user's, and rich reads "[batch, 1, ...]" as markup.
    console.print(message, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `vaseg export` to ``app``."""
    app.command("export")(export)
