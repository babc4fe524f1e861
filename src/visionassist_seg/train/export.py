"""ONNX export of a trained ShallowNet for the device: ``image`` (N, 1, 400, 640) -> ``logits`` (N, 2, 400, 640)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visionassist_seg.errors import VasegError
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.train.loader import scaled_size

OPSET = 17
# Tolerance per unit of logit magnitude: float32 itself is only that exact. Logits of a
# trained model reach about 100, where torch's own float32 result differs from float64
# by about 3e-4, so an absolute 1e-4 would fail on rounding alone.
MAX_DIFFERENCE = 1e-4


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


def export_onnx(
    model: nn.Module, path: Path, *, scale: float = 1.0, seed: int = 0, frames: np.ndarray | None = None
) -> float:
    """Write ``model`` (wrapped in `DeviceModel`) to ``path`` as ONNX and return the checked max difference.

    Input ``image`` 1x1x400x640 (height 400, width 640) and output ``logits`` 1x2x400x640
    with a dynamic batch dimension. The file is then run with onnxruntime on ``frames``
    (N, 1, 400, 640) (default: two random frames) and compared with the torch model.

    Raises:
        VasegError: onnxruntime's output differs from torch's by more than `check_onnx` allows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device_model = DeviceModel(model, scale).cpu().eval().float()
    dummy = torch.zeros(1, 1, HEIGHT, WIDTH)
    tmp = path.with_suffix(".onnx.tmp")
    # Height and width are fixed at 400x640 (only the batch is dynamic), so the tracer's
    # warnings about shape-dependent Python branches (padding, resizing) do not apply.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # torch 2.9+ flags the TorchScript exporter as legacy; it is the one that needs no onnxscript.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            device_model,
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            # The dynamo exporter needs onnxscript; the legacy TorchScript exporter does not.
            dynamo=importlib.util.find_spec("onnxscript") is not None,
        )
    _declare_output_shape(tmp)
    difference = check_onnx(device_model, tmp, seed=seed, frames=frames)
    tmp.replace(path)
    return difference


def _declare_output_shape(path: Path) -> None:
    """Write the static output dimensions (batch, 2, 400, 640) into the graph.

    The tracer leaves the dimensions after a Resize symbolic; a device runtime that
    allocates from the declared shape needs them fixed.
    """
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for dim, value in zip(dims[1:], (2, HEIGHT, WIDTH)):
        dim.Clear()
        dim.dim_value = value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check_onnx(
    model: nn.Module, path: Path, *, seed: int = 0, batch: int = 2, frames: np.ndarray | None = None
) -> float:
    """Return the max absolute difference between onnxruntime and torch logits on 400x640 frames.

    ``frames`` (N, 1, 400, 640) float32 0..255 default to ``batch`` uniform random frames.

    Raises:
        VasegError: the model's input/output names or shapes are wrong, or the difference exceeds
            ``1e-4 * max(1, max |torch logits|)``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != ["image"] or [o.name for o in outputs] != ["logits"]:
        raise VasegError(f"ONNX file {path} has inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]}.")
    if list(inputs[0].shape[1:]) != [1, HEIGHT, WIDTH] or list(outputs[0].shape[1:]) != [2, HEIGHT, WIDTH]:
        raise VasegError(
            f"ONNX file {path} maps {inputs[0].shape} to {outputs[0].shape}, expected [batch, 1, {HEIGHT}, {WIDTH}] "
            f"to [batch, 2, {HEIGHT}, {WIDTH}]."
        )
    if frames is None:
        frames = np.random.default_rng(seed).uniform(0, 255, (batch, 1, HEIGHT, WIDTH)).astype(np.float32)
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    batch = len(frames)
    (onnx_logits,) = session.run(["logits"], {"image": frames})
    with torch.no_grad():
        torch_logits = model.cpu().eval()(torch.from_numpy(frames)).numpy()
    if onnx_logits.shape != (batch, 2, HEIGHT, WIDTH):
        raise VasegError(f"ONNX file {path} returned shape {onnx_logits.shape}, expected ({batch}, 2, {HEIGHT}, {WIDTH}).")
    difference = float(np.abs(onnx_logits - torch_logits).max())
    limit = MAX_DIFFERENCE * max(1.0, float(np.abs(torch_logits).max()))
    if difference > limit:
        raise VasegError(
            f"ONNX export {path} differs from the torch model by {difference:.2e} (limit {limit:.1e}). "
            "Report this with the torch and onnxruntime versions; the .pt checkpoint is still valid."
        )
    return difference
