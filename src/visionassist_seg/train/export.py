"""ONNX export of a trained ShallowNet, in two layouts, each checked with onnxruntime against torch.

``standard`` (what `vaseg train` writes as best.onnx): ``image`` (N, 1, 400, 640), values
0..255 after gamma + CLAHE -> ``logits`` (N, 2, 400, 640). ``legacy``: the live demo's
contract (REFERENCE.md section 9), ``input`` (N, 1, 640, 400), the frame normalised with
``(x / 255 - 0.5) / 0.5`` and transposed -> ``output`` (N, 2, 640, 400), the upright
model's logits transposed.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visionassist_seg.errors import VasegError
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.train.model import scaled_size

OPSET = 17
# Tolerance per unit of logit magnitude: float32 itself is only that exact. Logits of a
# trained model reach about 100, where torch's own float32 result differs from float64
# by about 3e-4, so an absolute 1e-4 would fail on rounding alone.
MAX_DIFFERENCE = 1e-4
CHECK_FRAMES = 2


@dataclass(frozen=True)
class Layout:
    """Names and tensor shapes of one ONNX contract; ``frame`` is (rows, columns) as the file sees them."""

    name: str
    input_name: str
    output_name: str
    batch_axis: str
    frame: tuple[int, int]
    opset: int


LAYOUTS = {
    "standard": Layout("standard", "image", "logits", "batch", (HEIGHT, WIDTH), OPSET),
    # Opset 11, as the reference scripts exported: any onnxruntime that ran their model runs this one.
    "legacy": Layout("legacy", "input", "output", "batch_size", (WIDTH, HEIGHT), 11),
}


class DeviceModel(nn.Module):
    """Wraps a model trained at ``scale`` so it takes and returns full 400x640 frames.

    At ``scale < 1`` the frame is resized bilinearly (half-pixel centres, as the training
    loader's ``cv2.INTER_LINEAR``) to the training size, and the logits are resized back.

    Shape:
        image: (N, 1, 400, 640) float, gamma + CLAHE applied, values 0..255 -> logits (N, 2, 400, 640)
    """

    def __init__(self, model: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.size = scaled_size(scale) if scale < 1 else None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.size is None:
            return self.model(image)
        small = F.interpolate(image, size=self.size, mode="bilinear", align_corners=False)
        return upsample_logits(self.model(small), (HEIGHT, WIDTH))


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Return ``logits`` resized bilinearly to ``size`` (unchanged if already that size).

    Shape:
        logits: (N, C, h, w) -> (N, C, *size)
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class LegacyDemoModel(nn.Module):
    """The live demo's contract around an upright model: it undoes the demo's input handling in the graph.

    The demo feeds ``((frame / 255 - 0.5) / 0.5).T``; this de-normalises to 0..255,
    transposes back to 400x640, runs the upright model (which normalises again itself)
    and transposes the logits, so the demo's argmax-then-transpose gives the upright
    model's prediction.

    Shape:
        x: (N, 1, 640, 400) float, normalised -> logits (N, 2, 640, 400)
    """

    def __init__(self, upright: nn.Module) -> None:
        super().__init__()
        self.upright = upright

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = (x.transpose(2, 3) * 0.5 + 0.5) * 255.0
        return self.upright(image).transpose(2, 3)


def wrap_for_layout(model: nn.Module, scale: float, layout: str) -> nn.Module:
    """Return ``model`` (trained at ``scale``) wrapped to take and return ``layout``'s tensors, in eval mode on CPU."""
    device_model = DeviceModel(model, scale)
    wrapped = LegacyDemoModel(device_model) if layout == "legacy" else device_model
    return wrapped.cpu().eval().float()


def layout_input(frames: np.ndarray, layout: str) -> np.ndarray:
    """Return upright frames (N, 1, 400, 640), 0..255, as ``layout``'s input tensor (float32, C order).

    ``legacy`` is the demo's chain: ``(x / 255 - 0.5) / 0.5``, then rows and columns swapped.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if layout == "legacy":
        frames = ((frames / 255.0 - 0.5) / 0.5).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(frames, dtype=np.float32)


def sample_frames(count: int = CHECK_FRAMES, seed: int = 0) -> np.ndarray:
    """Return ``count`` synthetic eye frames (N, 1, 400, 640) float32, gamma + CLAHE applied as in the dataset."""
    from visionassist_seg.data.synthetic import make_sample
    from visionassist_seg.ops.intensity import enhance_image

    images = [enhance_image(make_sample(seed, "validation", i)[0]) for i in range(count)]
    return np.stack(images)[:, None].astype(np.float32)


def export_onnx(
    model: nn.Module,
    path: Path,
    *,
    scale: float = 1.0,
    seed: int = 0,
    frames: np.ndarray | None = None,
    layout: str = "standard",
) -> float:
    """Write ``model`` (trained at ``scale``) to ``path`` as ONNX in ``layout``; return the checked max difference.

    Only the batch dimension is dynamic. The file is then run with onnxruntime on
    ``frames`` (N, 1, 400, 640), upright, 0..255 after gamma + CLAHE (default: synthetic
    eye frames), fed in ``layout``'s form, and compared with the torch model. The file
    appears at ``path`` only once that check has passed.

    Raises:
        VasegError: onnxruntime's output is not finite or differs from torch's by more than
            `check_onnx` allows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = LAYOUTS[layout]
    wrapped = wrap_for_layout(model, scale, layout)
    dummy = torch.zeros(1, 1, *spec.frame)
    tmp = path.with_name(path.name + ".tmp")
    # Height and width are fixed (only the batch is dynamic), so the tracer's warnings
    # about shape-dependent Python branches (padding, resizing) do not apply.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # torch 2.9+ flags the TorchScript exporter as legacy; it is the one that needs no onnxscript.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            wrapped,
            (dummy,),
            str(tmp),
            input_names=[spec.input_name],
            output_names=[spec.output_name],
            dynamic_axes={spec.input_name: {0: spec.batch_axis}, spec.output_name: {0: spec.batch_axis}},
            opset_version=spec.opset,
            # The dynamo exporter needs onnxscript; the legacy TorchScript exporter does not.
            dynamo=importlib.util.find_spec("onnxscript") is not None,
        )
    try:
        _declare_output_shape(tmp, spec)
        difference = check_onnx(wrapped, tmp, seed=seed, frames=frames, layout=layout)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return difference


def _declare_output_shape(path: Path, spec: Layout) -> None:
    """Write the static output dimensions (batch, 2, rows, columns) into the graph.

    The tracer leaves the dimensions after a Resize symbolic; a device runtime that
    allocates from the declared shape (the demo preallocates its output) needs them fixed.
    """
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for dim, value in zip(dims[1:], (2, *spec.frame)):
        dim.Clear()
        dim.dim_value = value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check_onnx(
    model: nn.Module,
    path: Path,
    *,
    seed: int = 0,
    batch: int = CHECK_FRAMES,
    frames: np.ndarray | None = None,
    layout: str = "standard",
) -> float:
    """Return the max absolute difference between onnxruntime and torch logits on real frames.

    ``model`` takes ``layout``'s input (see `wrap_for_layout`). ``frames`` (N, 1, 400, 640)
    float32 0..255, upright, default to ``batch`` synthetic eye frames (`sample_frames`).

    Raises:
        VasegError: the model's input/output names or shapes are not ``layout``'s, an output is
            not finite (NaN or inf), or the difference exceeds ``1e-4 * max(1, max |torch logits|)``.
    """
    import onnxruntime as ort

    spec = LAYOUTS[layout]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _check_signature(session, path, spec)
    upright = sample_frames(batch, seed) if frames is None else frames
    inputs = layout_input(upright, layout)
    (onnx_logits,) = session.run([spec.output_name], {spec.input_name: inputs})
    with torch.no_grad():
        torch_logits = model.cpu().eval()(torch.from_numpy(inputs)).numpy()
    expected = (len(inputs), 2, *spec.frame)
    if onnx_logits.shape != expected:
        raise VasegError(f"ONNX file {path} returned shape {onnx_logits.shape}, expected {expected}.")
    for name, logits in (("onnxruntime", onnx_logits), ("torch", torch_logits)):
        if not np.isfinite(logits).all():
            raise VasegError(
                f"The model exported to {path} gives non-finite logits (NaN or inf) under {name}: its weights are "
                "broken (a diverged training run?). Export a checkpoint from before the divergence."
            )
    difference = float(np.abs(onnx_logits - torch_logits).max())
    limit = MAX_DIFFERENCE * max(1.0, float(np.abs(torch_logits).max()))
    if difference > limit:
        raise VasegError(
            f"ONNX export {path} differs from the torch model by {difference:.2e} (limit {limit:.1e}). "
            "Report this with the torch and onnxruntime versions; the .pt checkpoint is still valid."
        )
    return difference


def _check_signature(session, path: Path, spec: Layout) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != [spec.input_name] or [o.name for o in outputs] != [spec.output_name]:
        raise VasegError(
            f"ONNX file {path} has inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]}, "
            f"expected [{spec.input_name!r}] and [{spec.output_name!r}] ({spec.name} layout)."
        )
    rows, columns = spec.frame
    if list(inputs[0].shape[1:]) != [1, rows, columns] or list(outputs[0].shape[1:]) != [2, rows, columns]:
        raise VasegError(
            f"ONNX file {path} maps {inputs[0].shape} to {outputs[0].shape}, expected [batch, 1, {rows}, {columns}] "
            f"to [batch, 2, {rows}, {columns}] ({spec.name} layout)."
        )


@dataclass
class ExportResult:
    """What `export_model_file` wrote and how closely onnxruntime matched torch."""

    path: Path
    layout: str
    source_kind: str
    scale: float
    difference: float


def export_model_file(model_path: Path, output: Path, *, layout: str = "standard", seed: int = 0) -> ExportResult:
    """Export the weights in ``model_path`` (checkpoint, state dict or ONNX) to ``output`` in ``layout``.

    A checkpoint's training scale is honoured (the graph resizes frames to it and the
    logits back); the other kinds carry no scale and export at full resolution.

    Raises:
        VasegError: an unknown layout, unreadable or mismatched weights, an unwritable output,
            or an export that fails its onnxruntime check.
    """
    from visionassist_seg.train.weights import load_model

    if layout not in LAYOUTS:
        raise VasegError(f"Unknown --layout {layout!r}. Use one of: {', '.join(LAYOUTS)}.", exit_code=2)
    output = Path(output)
    if output.is_dir():
        raise VasegError(f"--output {output} is a folder. Pass a file name, e.g. {output / 'model.onnx'}.", exit_code=2)
    model, weights = load_model(model_path)
    try:
        difference = export_onnx(model, output, scale=weights.scale, seed=seed, layout=layout)
    except OSError as err:
        raise VasegError(f"Cannot write {output}: {err.strerror or err}. Pass an --output in a writable folder.") from None
    return ExportResult(output, layout, weights.kind, weights.scale, difference)
