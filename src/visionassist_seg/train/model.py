"""ShallowNet: a RITnet-style dense U-Net with depthwise-separable convolutions (REFERENCE.md section 4)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from visionassist_seg.ops.sample import HEIGHT, WIDTH

IN_CHANNELS = 1
NUM_CLASSES = 2
CHANNELS = 32
DROPOUT = 0.2
# Three 2x2 poolings: height and width must divide by 8 (forward pads to that).
SIZE_MULTIPLE = 8


def scaled_size(scale: float) -> tuple[int, int]:
    """Return the (height, width) of a 400x640 frame at ``scale`` (at least 8x8): the model's input size."""
    return max(8, round(HEIGHT * scale)), max(8, round(WIDTH * scale))


def dense_cat(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Return ``torch.cat((first, second), dim=1)`` in ``second``'s memory format.

    torch.cat takes the memory format of its first input, and a 1-channel tensor always
    reads as NCHW; in a channels_last network the first block's concatenations would
    come out NCHW and cost a full-resolution copy before every 1x1 convolution (about
    10 % of a CPU training step). Restriding the 1-channel input avoids that.

    Shape:
        first: (N, C1, H, W); second: (N, C2, H, W) -> (N, C1 + C2, H, W)
    """
    channels_last = second.is_contiguous(memory_format=torch.channels_last) and not second.is_contiguous()
    if first.shape[1] == 1 and channels_last and not torch.jit.is_tracing():
        n, _, h, w = first.shape
        restrided = torch.empty_strided(first.shape, (h * w, 1, w, 1), dtype=first.dtype, device=first.device)
        first = restrided.copy_(first)
    return torch.cat((first, second), dim=1)


def dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Return a float mask for ``x`` (CPU): ``1 / (1 - p)`` where kept, 0 with probability exactly ``p``.

    Each element compares a uniform U in [0, 1) with ``p`` and is dropped when U < p,
    reading U's bits lazily: its first byte (8 random bits, one 64-bit draw from torch's
    generator per 8 elements) decides unless it equals p's first byte (1 time in 256);
    those ties read 32 more bits, and so on until decided. That is exact for any ``p``
    and costs about 8 random bits per element; torch's CPU ``bernoulli_`` (nn.Dropout)
    draws 64 bits per element, one element at a time, and was the largest single cost of
    a CPU training step with 19 dropout layers.

    Shape:
        x: any shape and p in (0, 1) -> x's shape, x's memory format (contiguous or channels_last)
    """
    n = x.numel()
    words = torch.empty((n + 7) // 8, dtype=torch.int64).random_(-(2**63), None)
    first = words.view(torch.uint8)
    threshold = math.floor(p * 256)
    rest = p * 256 - threshold  # p's bits after its first byte, as a fraction
    # bool results are slower to write than 0/1 in the output dtype: compare into x's dtype and uint8.
    mask = torch.gt(first[:n], threshold, out=torch.empty(n, dtype=x.dtype))
    tied = torch.eq(first, threshold, out=torch.empty_like(first))
    ties = tied.view(torch.int64).nonzero().squeeze(1)  # 64-bit words holding a tie (about 3 %)
    if ties.numel():
        byte = tied.view(-1, 8)[ties].nonzero()
        ties = ties[byte[:, 0]] * 8 + byte[:, 1]
        ties = ties[ties < n]
        while ties.numel():
            if rest == 0:  # U equals p in every bit p has: U >= p
                mask[ties] = 1
                break
            draws = torch.empty(ties.numel(), dtype=torch.int64).random_(0, 2**32)
            bound = math.floor(rest * 2**32)
            rest = rest * 2**32 - bound
            mask[ties[draws > bound]] = 1
            ties = ties[draws == bound]
    mask.mul_(1.0 / (1.0 - p))
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return mask.as_strided(x.shape, x.stride())
    return mask.view(x.shape)


class Dropout(nn.Dropout):
    """`nn.Dropout` with a cheaper mask on CPU in float32 training (`dropout_mask`); elsewhere `nn.Dropout` itself.

    Same semantics: each element is zeroed independently with probability ``p`` and the
    rest are scaled by ``1 / (1 - p)``; the identity in eval mode. The mask comes from
    torch's global CPU generator, so ``torch.manual_seed`` makes a run reproducible; it is
    not the mask `nn.Dropout` would draw from the same seed. CUDA (torch's fused kernel),
    dtypes other than float32 (autocast's), tracing (ONNX export) and torch.compile use
    `nn.Dropout`'s own forward. No parameters: state dicts are `nn.Dropout`'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            not self.training
            or not 0 < self.p < 1
            or x.device.type != "cpu"
            or x.dtype != torch.float32
            or torch.jit.is_tracing()
            or torch.compiler.is_compiling()
        ):
            return super().forward(x)
        mask = dropout_mask(x, self.p)
        return x.mul_(mask) if self.inplace else x * mask


def depthwise_conv(channels: int) -> nn.Conv2d:
    """Return a 3x3 depthwise convolution (one filter per channel, padding 1)."""
    return nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)


def pointwise_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Return a 1x1 convolution."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


class DownBlock(nn.Module):
    """Optional 2x2 average pooling, then three dense separable stages and BatchNorm.

    Module names are the reference's (REFERENCE.md section 10), so its state dicts load
    one to one. Each separable stage is depthwise 3x3 then pointwise 1x1, then dropout,
    then LeakyReLU (RITnet's order).

    Shape:
        x: (N, in_channels, H, W) -> (N, out_channels, H / 2, W / 2) with pooling, else (N, out_channels, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, *, pool: bool, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()
        self.depthwise_conv1 = depthwise_conv(in_channels)
        self.pointwise_conv1 = pointwise_conv(in_channels, out_channels)
        self.conv21 = pointwise_conv(in_channels + out_channels, out_channels)
        self.depthwise_conv22 = depthwise_conv(out_channels)
        self.pointwise_conv22 = pointwise_conv(out_channels, out_channels)
        self.conv31 = pointwise_conv(in_channels + 2 * out_channels, out_channels)
        self.depthwise_conv32 = depthwise_conv(out_channels)
        self.pointwise_conv32 = pointwise_conv(out_channels, out_channels)
        # In place: its input (a dropout output) is needed by no backward.
        self.act = nn.LeakyReLU(inplace=True)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        x1 = self.act(self.dropout1(self.pointwise_conv1(self.depthwise_conv1(x))))
        x21 = dense_cat(x, x1)
        x22 = self.act(self.dropout2(self.pointwise_conv22(self.depthwise_conv22(self.conv21(x21)))))
        x31 = torch.cat((x21, x22), dim=1)
        out = self.act(self.dropout3(self.pointwise_conv32(self.depthwise_conv32(self.conv31(x31)))))
        return self.bn(out)


class UpBlock(nn.Module):
    """Nearest x2 upsampling, concatenation with the skip, then two dense separable stages.

    Each stage: 1x1, depthwise 3x3, pointwise 1x1, dropout, LeakyReLU. Module names are
    the reference's (REFERENCE.md section 10).

    Shape:
        skip: (N, skip_channels, 2H, 2W); x: (N, in_channels, H, W) -> (N, out_channels, 2H, 2W)
    """

    def __init__(self, skip_channels: int, in_channels: int, out_channels: int, *, dropout: float) -> None:
        super().__init__()
        self.conv11 = pointwise_conv(skip_channels + in_channels, out_channels)
        self.depthwise_conv12 = depthwise_conv(out_channels)
        self.pointwise_conv12 = pointwise_conv(out_channels, out_channels)
        self.conv21 = pointwise_conv(skip_channels + in_channels + out_channels, out_channels)
        self.depthwise_conv22 = depthwise_conv(out_channels)
        self.pointwise_conv22 = pointwise_conv(out_channels, out_channels)
        self.act = nn.LeakyReLU(inplace=True)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = torch.cat((x, skip), dim=1)
        x1 = self.act(self.dropout1(self.pointwise_conv12(self.depthwise_conv12(self.conv11(x)))))
        x21 = torch.cat((x, x1), dim=1)
        return self.act(self.dropout2(self.pointwise_conv22(self.depthwise_conv22(self.conv21(x21)))))


class ShallowNet(nn.Module):
    """Pupil segmenter: four down blocks, three up blocks, a 1x1 classifier (58,092 parameters).

    The reference's architecture and state-dict names (REFERENCE.md sections 4 and 10),
    with its 19 dropout layers. The input is a raw uint8-range grayscale frame as float;
    `forward` normalises it with ``(x / 255 - 0.5) / 0.5`` (the reference did that outside
    the model), pads height and width up to a multiple of 8 and crops the logits back,
    so any frame size works.

    Shape:
        x: (N, 1, H, W) float, values 0..255 -> logits (N, 2, H, W)
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        num_classes: int = NUM_CLASSES,
        channels: int = CHANNELS,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        self.down_block1 = DownBlock(in_channels, channels, pool=False, dropout=dropout)
        self.down_block2 = DownBlock(channels, channels, pool=True, dropout=dropout)
        self.down_block3 = DownBlock(channels, channels, pool=True, dropout=dropout)
        self.down_block4 = DownBlock(channels, channels, pool=True, dropout=dropout)
        self.up_block1 = UpBlock(channels, channels, channels, dropout=dropout)
        self.up_block2 = UpBlock(channels, channels, channels, dropout=dropout)
        self.up_block3 = UpBlock(channels, channels, channels, dropout=dropout)
        self.dropout1 = Dropout(dropout)
        self.out_conv1 = pointwise_conv(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as RITnet: conv weights N(0, sqrt(2 / n)), biases 0, BatchNorm 1 and 0.

        n is the number of inputs one output sums over per channel: k*k for a
        depthwise convolution, in_channels for a 1x1 convolution.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_in = kh * kw * module.in_channels // module.groups
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_in))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def network(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits of normalised input whose height and width divide by 8 (the reference's forward).

        Shape:
            x: (N, 1, H, W) float, (pixel / 255 - 0.5) / 0.5 -> (N, 2, H, W)
        """
        x1 = self.down_block1(x)
        x2 = self.down_block2(x1)
        x3 = self.down_block3(x2)
        x4 = self.down_block4(x3)
        x5 = self.up_block1(x3, x4)
        x6 = self.up_block2(x2, x5)
        x7 = self.up_block3(x1, x6)
        return self.out_conv1(self.dropout1(x7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = (x / 255.0 - 0.5) / 0.5
        pad_h = (-height) % SIZE_MULTIPLE
        pad_w = (-width) % SIZE_MULTIPLE
        padded = bool(pad_h or pad_w)
        if padded:
            # Replicate, not zeros: a zero border after normalisation reads as a black band.
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        logits = self.network(x)
        # Crop only when padded, so an exported 400x640 graph keeps static output dimensions.
        return logits[..., :height, :width] if padded else logits


# Key renames from vaseg's first ShallowNet (checkpoints written before the reference
# names) to the reference names, applied to the part of the key after the block name.
_OLD_BLOCKS = {"down": "down_block", "up": "up_block"}
_OLD_LAYERS = {
    "conv1.0": "depthwise_conv1", "conv1.1": "pointwise_conv1",
    "conv12.0": "depthwise_conv12", "conv12.1": "pointwise_conv12",
    "conv22.0": "depthwise_conv22", "conv22.1": "pointwise_conv22",
    "conv32.0": "depthwise_conv32", "conv32.1": "pointwise_conv32",
}  # fmt: skip
# Prefixes torch adds when a state dict is saved from a wrapped model.
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def reference_key(key: str) -> str:
    """Return ``key`` in the reference's state-dict names (REFERENCE.md section 10).

    Maps vaseg's first names (``down1.conv1.0.weight`` -> ``down_block1.depthwise_conv1.weight``,
    ``out_conv.bias`` -> ``out_conv1.bias``) and strips the prefixes of a
    ``torch.compile`` (``_orig_mod.``) or ``DataParallel`` (``module.``) model; reference
    names pass through unchanged.
    """
    for prefix in _WRAPPER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    if key.startswith("out_conv."):
        return "out_conv1." + key[len("out_conv.") :]
    block, _, rest = key.partition(".")
    name = block.rstrip("0123456789")
    if name not in _OLD_BLOCKS or not block[len(name) :]:
        return key
    layer, _, leaf = rest.rpartition(".")
    return f"{_OLD_BLOCKS[name]}{block[len(name):]}.{_OLD_LAYERS.get(layer, layer)}.{leaf}"


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
