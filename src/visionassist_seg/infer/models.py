"""Load a trained model behind one interface: 400x640 frames in, (N, 2, 400, 640) logits out.

ONNX files (either layout `vaseg export` writes) run on onnxruntime without importing
torch; a `.pt` training checkpoint runs through torch (the `train` extra).

- standard: input ``image`` (N, 1, 400, 640), gamma + CLAHE applied, values 0..255;
  output (N, 2, 400, 640) logits.
- legacy (the live demo's contract, REFERENCE.md section 9): input ``input``
  (N, 1, 640, 400), normalised ``(x / 255 - 0.5) / 0.5`` and transposed; output
  (N, 2, 640, 400), transposed logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionassist_seg.errors import VasegError
from visionassist_seg.ops.sample import HEIGHT, WIDTH

STANDARD, LEGACY, CHECKPOINT = "standard", "legacy", "checkpoint"
ONNX_SUFFIXES = (".onnx",)
TORCH_SUFFIXES = (".pt", ".pth")
# Expected (name, shape after the batch dimension) of each ONNX layout's input and output.
LAYOUTS = {
    STANDARD: ("image", (1, HEIGHT, WIDTH), (2, HEIGHT, WIDTH)),
    LEGACY: ("input", (1, WIDTH, HEIGHT), (2, WIDTH, HEIGHT)),
}


def unexpected_interface(path: Path, found: str) -> VasegError:
    """Return the error for a model whose inputs or outputs are not one of vaseg's layouts."""
    return VasegError(
        f"{path} is a model with an unexpected interface ({found}). vaseg runs ShallowNet models in one of two "
        f"layouts: 'standard' (input 'image' of shape (batch, 1, {HEIGHT}, {WIDTH}) -> logits (batch, 2, {HEIGHT}, {WIDTH}), "
        f"as train writes best.onnx) or 'legacy' (input 'input' of shape (batch, 1, {WIDTH}, {HEIGHT}), normalised and "
        "transposed, as the live demo feeds it). Export the model with `vaseg export`, or pass a `.pt` checkpoint "
        "from `vaseg train`."
    )


class OnnxSegmenter:
    """An ONNX model on onnxruntime (CPU, or CUDA when the installed onnxruntime has it and ``device`` asks)."""

    def __init__(self, path: Path, *, threads: int | None = None, device: str = "cpu") -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise VasegError(
                f"onnxruntime cannot load {self.path}: {str(err).splitlines()[0]}. Pass an ONNX file written by "
                "`vaseg export` or `vaseg train` (best.onnx)."
            ) from None
        self.layout, self.max_batch = _detect_layout(self.path, self.session)
        self.output_name = self.session.get_outputs()[0].name
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, frames: np.ndarray) -> np.ndarray:
        """Return the model's logits for a batch of canvases.

        Shape:
            frames: (N, 400, 640) uint8 or float, gamma + CLAHE applied -> (N, 2, 400, 640) float32
        """
        if self.max_batch and len(frames) > self.max_batch:
            return np.concatenate([self.logits(frames[i : i + self.max_batch]) for i in range(0, len(frames), self.max_batch)])
        if self.layout == STANDARD:
            feed = frames.astype(np.float32)[:, None]
        else:
            normalised = frames.astype(np.float32) * np.float32(2 / 255) - np.float32(1)  # (x / 255 - 0.5) / 0.5
            feed = np.ascontiguousarray(normalised.transpose(0, 2, 1)[:, None])
        (out,) = self.session.run([self.output_name], {self.input_name: feed})
        if self.layout == LEGACY:
            out = out.transpose(0, 1, 3, 2)
        if out.shape != (len(frames), 2, HEIGHT, WIDTH):
            raise unexpected_interface(self.path, f"it returned logits of shape {list(out.shape)}")
        return out


def _detect_layout(path: Path, session) -> tuple[str, int | None]:
    """Return the layout of an ONNX session and its fixed batch size (None when the batch is dynamic)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    found = f"inputs {[(i.name, i.shape) for i in inputs]}, outputs {[(o.name, o.shape) for o in outputs]}"
    if len(inputs) != 1 or len(outputs) != 1:
        raise unexpected_interface(path, found)
    name, shape = inputs[0].name, list(inputs[0].shape)
    for layout, (expected_name, input_shape, output_shape) in LAYOUTS.items():
        if name != expected_name or len(shape) != 4 or tuple(shape[1:]) != input_shape:
            continue
        out_shape = list(outputs[0].shape)
        # Output dimensions may be symbolic (the tracer leaves them so after a Resize); check the static ones.
        if len(out_shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(out_shape[1:], output_shape)):
            raise unexpected_interface(path, found)
        if "float" not in inputs[0].type:
            raise unexpected_interface(path, found)
        return layout, shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    raise unexpected_interface(path, found)


class TorchSegmenter:
    """A `vaseg train` checkpoint run through torch, at its training scale (resized inside, as best.onnx does)."""

    layout = CHECKPOINT

    def __init__(self, path: Path, *, threads: int | None = None, device: str = "auto") -> None:
        from visionassist_seg.extras import require_train_extra

        require_train_extra(f"Running the checkpoint {path}", ("torch",))
        import torch

        from visionassist_seg.train.export import DeviceModel
        from visionassist_seg.train.checkpoint import load_checkpoint
        from visionassist_seg.train.device import resolve_device
        from visionassist_seg.train.model import ShallowNet

        if threads:
            torch.set_num_threads(threads)
        self.path = Path(path)
        self.device = resolve_device(device)
        state = load_checkpoint(self.path, torch.device("cpu"))
        self.scale = float(state.get("model_config", {}).get("scale", 1.0))
        # Whether the run validated under autocast (CUDA only): evaluate repeats it to reproduce the numbers.
        self.amp = bool(state.get("settings", {}).get("amp", True))
        self.model = ShallowNet()
        try:
            self.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError, TypeError) as err:
            raise unexpected_interface(self.path, f"its weights do not fit ShallowNet: {str(err).splitlines()[0]}") from None
        self.channels_last = self.device.type in ("cpu", "cuda")
        self.model = self.model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.full_size = DeviceModel(self.model, self.scale).eval()

    def logits(self, frames: np.ndarray) -> np.ndarray:
        """Return the model's logits for a batch of canvases (see `OnnxSegmenter.logits`)."""
        import torch

        with torch.no_grad():
            batch = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).float()[:, None]
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return self.full_size(batch).float().cpu().numpy()


def load_segmenter(path: Path, *, threads: int | None = None, device: str = "auto") -> OnnxSegmenter | TorchSegmenter:
    """Return the model at ``path``: an ONNX file on onnxruntime, or a `.pt` checkpoint on torch.

    Raises:
        VasegError: the file is missing, of another kind, or has an unexpected interface.
    """
    path = Path(path)
    if not path.is_file():
        raise VasegError(f"Model {path} does not exist. Pass a best.onnx / best.pt from a `vaseg train` run folder.")
    if path.suffix.lower() in ONNX_SUFFIXES:
        return OnnxSegmenter(path, threads=threads, device=device)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return TorchSegmenter(path, threads=threads, device=device)
    raise VasegError(
        f"Model {path} is neither an ONNX file (.onnx) nor a vaseg checkpoint (.pt). Pass best.onnx or best.pt "
        "from a `vaseg train` run folder, or a file `vaseg export` wrote.",
        exit_code=2,
    )


def count_onnx_parameters(path: Path) -> int:
    """Return the trainable parameters of an ONNX ShallowNet: convolution weights and biases, BatchNorm scales and shifts.

    Running statistics and shape constants are not parameters; counting by node keeps
    them out whatever names the exporter gave the initializers.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    sizes = {init.name: int(np.prod(init.dims)) for init in graph.initializer}
    used = {"Conv": (1, 2), "BatchNormalization": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2)}
    names = {node.input[i] for node in graph.node for i in used.get(node.op_type, ()) if i < len(node.input)}
    return sum(sizes.get(name, 0) for name in names)
