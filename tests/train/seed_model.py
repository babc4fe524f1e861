"""The reference scripts' ShallowNet forward, ONNX export and key names, rebuilt for tests of old-weight loading.

The reference model has vaseg's modules and names (REFERENCE.md section 10) but no
normalisation or padding in its forward: the demo normalises before feeding it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from visionassist_seg.train.model import ShallowNet


class SeedShallowNet(ShallowNet):
    """ShallowNet with the reference's forward: already normalised input, H and W divisible by 8."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def trained_like(model: ShallowNet, seed: int = 0) -> ShallowNet:
    """Return ``model`` with every bias and BatchNorm statistic random, as after training (no two equal)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("bias", "bn.weight", "running_mean")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(1234)
    return model


def export_like_seed(model: ShallowNet, path: Path, size: tuple[int, int] = (640, 400)) -> Path:
    """Write ``model``'s weights as the reference exported them: TorchScript exporter, opset 11, transposed dummy."""
    seed_model = SeedShallowNet()
    seed_model.load_state_dict(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            seed_model.eval(),
            torch.randn(1, 1, *size),
            str(path),
            opset_version=11,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}},
            dynamo=False,
        )
    return path


def reference_state_dict_names() -> list[str]:
    """The 122 names of REFERENCE.md section 10, written out from its text."""
    down = ["depthwise_conv1", "pointwise_conv1", "conv21", "depthwise_conv22", "pointwise_conv22",
            "conv31", "depthwise_conv32", "pointwise_conv32"]  # fmt: skip
    up = ["conv11", "depthwise_conv12", "pointwise_conv12", "conv21", "depthwise_conv22", "pointwise_conv22"]
    names = []
    for block in range(1, 5):
        names += [f"down_block{block}.{layer}.{leaf}" for layer in down for leaf in ("weight", "bias")]
        names += [f"down_block{block}.bn.{leaf}" for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    for block in range(1, 4):
        names += [f"up_block{block}.{layer}.{leaf}" for layer in up for leaf in ("weight", "bias")]
    return names + ["out_conv1.weight", "out_conv1.bias"]


def old_vaseg_name(name: str) -> str:
    """Return the key vaseg's first ShallowNet used for reference ``name`` (down1.conv1.0.weight, ...)."""
    if name.startswith("out_conv1."):
        return "out_conv." + name.split(".")[-1]
    block, layer, leaf = name.split(".")
    block = block.replace("down_block", "down").replace("up_block", "up")
    for kind, index in (("depthwise_conv", 0), ("pointwise_conv", 1)):
        if layer.startswith(kind):
            layer = f"conv{layer[len(kind):]}.{index}"
    return f"{block}.{layer}.{leaf}"
