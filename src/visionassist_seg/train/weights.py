"""ShallowNet weights from any file a user has: a vaseg checkpoint, a plain state dict, or the reference scripts' ONNX export.

`read_weights` tells the three kinds apart and returns the weights under the reference's
state-dict names (REFERENCE.md section 10); `load_state` puts them into a model with one
readable error for missing, unexpected or wrongly shaped entries. `read_torch_file` is
the one place a `.pt` file is opened, for `--init-from`, `--resume` and `vaseg export`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from visionassist_seg.errors import VasegError
from visionassist_seg.train.model import DROPOUT, ShallowNet, reference_key

WeightsKind = Literal["checkpoint", "state dict", "onnx"]
# Pickle protocol 2+ starts with this byte: torch.save's pre-1.6 (non-zip) format.
_PICKLE_MAGIC = b"\x80"
# How many key names an error message lists before "and N more".
_SHOWN_KEYS = 6


@dataclass
class ModelWeights:
    """Weights read from ``path``, under the reference's names, and what else the file said."""

    path: Path
    kind: WeightsKind
    state: dict[str, torch.Tensor]
    # Training scale of a vaseg checkpoint (1.0 for the other kinds, which never carry one).
    scale: float = 1.0


def read_weights(path: Path) -> ModelWeights:
    """Return the ShallowNet weights in ``path`` (a vaseg checkpoint, a plain state dict or an ONNX file).

    Keys come back in the reference's names: vaseg's first names and ``torch.compile`` /
    ``DataParallel`` prefixes are mapped by `reference_key`.

    Raises:
        VasegError: the file is missing, unreadable, or none of the three kinds.
    """
    path = Path(path)
    if not path.is_file():
        raise VasegError(f"Model file {path} does not exist. Pass a best.pt/last.pt, a saved state dict or an ONNX file.")
    if not is_torch_file(path):
        return ModelWeights(path, "onnx", onnx_state_dict(path))
    data = read_torch_file(path)
    if is_state_dict(data):
        return ModelWeights(path, "state dict", _renamed(data))
    if isinstance(data, dict) and is_state_dict(data.get("model")):
        return ModelWeights(path, "checkpoint", _renamed(data["model"]), scale=checkpoint_scale(data))
    found = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
    raise VasegError(
        f"{path} holds no ShallowNet weights (found: {found}). Pass a vaseg best.pt/last.pt (a dict with a "
        "'model' state dict), a file written by torch.save(model.state_dict()), or an ONNX export."
    )


def read_torch_file(path: Path, device: torch.device | str = "cpu") -> Any:
    """Return the object `torch.save` wrote to ``path``, loaded safely (tensors and plain containers only).

    Raises:
        VasegError: the file is missing, corrupt, or holds objects other than tensors and containers.
    """
    if not Path(path).is_file():
        raise VasegError(f"Model file {path} does not exist. Check the path.")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VasegError(
            f"Cannot read {path} as a torch file ({first_line}). Pass a file written by `vaseg train` "
            "or by torch.save(model.state_dict())."
        ) from None


def is_state_dict(data: Any) -> bool:
    """Return True if ``data`` is a non-empty mapping of names to tensors (what `state_dict()` returns)."""
    return isinstance(data, dict) and bool(data) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    )


def checkpoint_scale(checkpoint: dict) -> float:
    """Return the training scale a vaseg checkpoint was trained at (1.0 when it does not say)."""
    config = checkpoint.get("model_config")
    if isinstance(config, dict) and "scale" in config:
        return float(config["scale"])
    settings = checkpoint.get("settings")
    if isinstance(settings, dict):  # sectioned settings, or the flat ones of earlier builds
        train = settings.get("train")
        if isinstance(train, dict) and "scale" in train:
            return float(train["scale"])
        if "scale" in settings:
            return float(settings["scale"])
    return 1.0


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Copy ``state`` (any accepted key names) into ``model``; every weight must be there with its shape.

    ``num_batches_tracked`` may be missing (ONNX files and some saved state dicts lack
    it; it only matters for BatchNorm with ``momentum=None``).

    Raises:
        VasegError: naming ``path`` and the missing, unexpected or wrongly shaped keys.
    """
    state = _renamed(state)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        problems = [
            f"{label} {_listing(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
            if keys
        ]
        raise VasegError(
            f"The weights in {path} do not fit ShallowNet: {'; '.join(problems)}. Pass weights of vaseg's or the "
            "VisionAssist scripts' ShallowNet (1 input channel, 32 channels, 2 classes, 58,092 parameters)."
        )
    model.load_state_dict(state, strict=False)


def load_model(path: Path, *, dropout: float = DROPOUT) -> tuple[ShallowNet, ModelWeights]:
    """Return a ShallowNet in eval mode holding the weights of ``path``, and what was read.

    Raises:
        VasegError: as `read_weights` and `load_state`.
    """
    weights = read_weights(path)
    model = ShallowNet(dropout=dropout)
    load_state(model, weights.state, weights.path)
    return model.eval(), weights


def onnx_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Return the ShallowNet weights stored in an ONNX file, under the reference's names.

    The k-th ``Conv`` / ``BatchNormalization`` node of the graph is the k-th convolution /
    BatchNorm of ShallowNet (each one feeds the next, so every valid node order agrees),
    and its weight inputs are read wherever they are stored: initializers, ``Constant``
    nodes or ``Identity`` copies. Matching by structure, not by name, is needed because
    exporters rename what they merge: on a fresh model (biases and BatchNorm statistics all
    zeros or ones) torch's TorchScript exporter keeps one initializer per value and the
    other names only as Identity outputs, and its dynamo exporter drops all-zero conv
    biases and shares ``bn.bias``/``bn.weight`` as running mean/variance. Where an
    initializer does carry a weight's own name, its value must agree (a check on the
    node order). ``num_batches_tracked`` is never exported.

    Raises:
        VasegError: the file is not ONNX, its Conv/BatchNormalization nodes are not
            ShallowNet's, or a weight is computed in the graph rather than stored.
    """
    graph = _read_onnx_graph(path)
    values = _stored_tensors(graph)
    layers = [(n, m) for n, m in ShallowNet().named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    nodes = [node for node in graph.node if node.op_type in ("Conv", "BatchNormalization")]
    expected = ["Conv" if isinstance(m, nn.Conv2d) else "BatchNormalization" for _, m in layers]
    if [node.op_type for node in nodes] != expected:
        raise VasegError(
            f"ONNX file {path} has {_op_counts([n.op_type for n in nodes])}, in an order that is not ShallowNet's "
            f"({_op_counts(expected)}): it is another model. Pass weights of vaseg's or the VisionAssist scripts' ShallowNet."
        )
    state = {}
    for (name, module), node in zip(layers, nodes):
        state.update(_node_weights(path, name, module, node, values))
    for key, tensor in state.items():
        if key in values and not torch.equal(values[key], tensor):
            raise VasegError(
                f"ONNX file {path} stores {key} where ShallowNet's graph order does not use it: its nodes are "
                "not in ShallowNet's order. Pass the .pt weights instead."
            )
    return state


def _read_onnx_graph(path: Path):  # -> onnx.GraphProto
    import onnx

    try:
        graph = onnx.load(str(path)).graph
        problem = "" if graph.node else "no graph"  # protobuf parses an empty or foreign file as an empty model
    except Exception as err:  # protobuf's DecodeError and friends, or a missing external-data file
        problem = f"{type(err).__name__}: {err}"
    if problem:
        raise VasegError(
            f"Cannot read {path} as a torch or ONNX file ({problem}). Pass a vaseg best.pt/last.pt, "
            "a file written by torch.save(model.state_dict()), or an ONNX export of ShallowNet."
        )
    if any(node.op_type == "Resize" and _attribute(node, "mode") == b"linear" for node in graph.node):
        raise VasegError(
            f"ONNX file {path} resizes its input bilinearly: it is a vaseg export of a --scale run, and the "
            "graph does not record the training scale. Pass that run's best.pt instead."
        )
    return graph


def _stored_tensors(graph) -> dict[str, torch.Tensor]:
    """Return every tensor the graph stores, by the names nodes use: initializers, Constants, Identity copies."""
    from onnx import numpy_helper

    values = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return {name: torch.from_numpy(numpy_helper.to_array(v).copy()) for name, v in values.items()}


def _node_weights(path: Path, name: str, module: nn.Module, node, values: dict) -> dict[str, torch.Tensor]:
    """Return the state-dict entries of layer ``name`` read from the inputs of its ONNX ``node``."""
    fields = ("weight", "bias") if isinstance(module, nn.Conv2d) else ("weight", "bias", "running_mean", "running_var")
    state = {}
    for field, value_name in zip(fields, node.input[1:]):
        if value_name and value_name not in values:
            raise VasegError(
                f"ONNX file {path}: {name}.{field} is computed in the graph ({value_name!r}), not stored. "
                "Export the model without training-mode folding, or pass the .pt weights."
            )
        if value_name:
            state[f"{name}.{field}"] = values[value_name]
    if isinstance(module, nn.Conv2d) and f"{name}.bias" not in state:
        # Exporters drop a bias input that is all zeros.
        state[f"{name}.bias"] = torch.zeros(module.out_channels)
    return state


def _op_counts(ops: list[str]) -> str:
    return " and ".join(f"{ops.count(op)} {op}" for op in ("Conv", "BatchNormalization"))


def _attribute(node, name: str) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def is_torch_file(path: Path) -> bool:
    """Return True if ``path`` was written by `torch.save` (False for ONNX and other files)."""
    # torch.save writes a zip archive (torch >= 1.6) or a bare pickle; ONNX is a protobuf, neither.
    if zipfile.is_zipfile(path):
        return True
    with Path(path).open("rb") as handle:
        return handle.read(1) == _PICKLE_MAGIC


def _renamed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {reference_key(k): v for k, v in state.items()}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    return shown + (f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else "")
