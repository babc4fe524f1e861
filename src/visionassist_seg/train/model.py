"""ShallowNet: a RITnet-style dense U-Net with depthwise-separable convolutions (REFERENCE.md section 4)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IN_CHANNELS = 1
NUM_CLASSES = 2
CHANNELS = 32
DROPOUT = 0.2
# Three 2x2 poolings: height and width must divide by 8 (forward pads to that).
SIZE_MULTIPLE = 8


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


class Dropout(nn.Module):
    """Dropout whose mask comes from 64-bit random words split into 16-bit thresholds.

    Same semantics as `nn.Dropout` (zero with probability ``p``, scale the rest by
    ``1 / (1 - p)``; ``p`` is rounded to a multiple of 1/65536), drawn from torch's
    global generator, but about 30 % cheaper per call on CPU: torch's Bernoulli
    sampling draws one random number per element, this draws one per four. Other
    devices use `torch.nn.functional.dropout` (their generators are fast, and it is
    what torch.compile knows best).

    Shape:
        x: (N, C, H, W) -> (N, C, H, W), same memory format
    """

    def __init__(self, p: float = DROPOUT) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        count = x.numel()
        words = torch.empty((count + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
        keep = words.view(torch.int16)[:count] >= round(self.p * 65536) - 32768
        n, c, h, w = x.shape
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            keep = keep.view(n, h, w, c).permute(0, 3, 1, 2)
        else:
            keep = keep.view(n, c, h, w)
        return torch.where(keep, x * (1.0 / (1.0 - self.p)), 0.0)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SeparableConv(nn.Sequential):
    """A depthwise 3x3 convolution followed by a pointwise 1x1 convolution.

    Shape:
        input: (N, in_channels, H, W) -> (N, out_channels, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
        )


class DownBlock(nn.Module):
    """Optional 2x2 average pooling, then three dense separable stages and BatchNorm.

    Shape:
        x: (N, in_channels, H, W) -> (N, out_channels, H / 2, W / 2) with pooling, else (N, out_channels, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, *, pool: bool, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()
        self.conv1 = SeparableConv(in_channels, out_channels)
        self.conv21 = nn.Conv2d(in_channels + out_channels, out_channels, kernel_size=1)
        self.conv22 = SeparableConv(out_channels, out_channels)
        self.conv31 = nn.Conv2d(in_channels + 2 * out_channels, out_channels, kernel_size=1)
        self.conv32 = SeparableConv(out_channels, out_channels)
        # In place: its input (a convolution or dropout output) is needed by no backward.
        self.act = nn.LeakyReLU(inplace=True)
        self.drop1 = Dropout(dropout)
        self.drop2 = Dropout(dropout)
        self.drop3 = Dropout(dropout)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        x1 = self.act(self.drop1(self.conv1(x)))
        x21 = dense_cat(x, x1)
        x22 = self.act(self.drop2(self.conv22(self.conv21(x21))))
        x31 = torch.cat((x21, x22), dim=1)
        out = self.act(self.drop3(self.conv32(self.conv31(x31))))
        return self.bn(out)


class UpBlock(nn.Module):
    """Nearest x2 upsampling, concatenation with the skip, then two dense separable stages.

    Shape:
        skip: (N, skip_channels, 2H, 2W); x: (N, in_channels, H, W) -> (N, out_channels, 2H, 2W)
    """

    def __init__(self, skip_channels: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv11 = nn.Conv2d(skip_channels + in_channels, out_channels, kernel_size=1)
        self.conv12 = SeparableConv(out_channels, out_channels)
        self.conv21 = nn.Conv2d(skip_channels + in_channels + out_channels, out_channels, kernel_size=1)
        self.conv22 = SeparableConv(out_channels, out_channels)
        self.act = nn.LeakyReLU(inplace=True)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = torch.cat((x, skip), dim=1)
        x1 = self.act(self.conv12(self.conv11(x)))
        x21 = torch.cat((x, x1), dim=1)
        return self.act(self.conv22(self.conv21(x21)))


class ShallowNet(nn.Module):
    """Pupil segmenter: four down blocks, three up blocks, a 1x1 classifier (58,092 parameters).

    The input is a raw uint8-range grayscale frame as float; `forward` normalises it
    with ``(x / 255 - 0.5) / 0.5``, pads height and width up to a multiple of 8 and
    crops the logits back, so any frame size works.

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
        self.down1 = DownBlock(in_channels, channels, pool=False, dropout=dropout)
        self.down2 = DownBlock(channels, channels, pool=True, dropout=dropout)
        self.down3 = DownBlock(channels, channels, pool=True, dropout=dropout)
        self.down4 = DownBlock(channels, channels, pool=True, dropout=dropout)
        self.up1 = UpBlock(channels, channels, channels)
        self.up2 = UpBlock(channels, channels, channels)
        self.up3 = UpBlock(channels, channels, channels)
        self.out_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = (x / 255.0 - 0.5) / 0.5
        pad_h = (-height) % SIZE_MULTIPLE
        pad_w = (-width) % SIZE_MULTIPLE
        padded = bool(pad_h or pad_w)
        if padded:
            # Replicate, not zeros: a zero border after normalisation reads as a black band.
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x1 = self.down1(x)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        x = self.up1(x3, x4)
        x = self.up2(x2, x)
        x = self.up3(x1, x)
        logits = self.out_conv(x)
        # Crop only when padded, so an exported 400x640 graph keeps static output dimensions.
        return logits[..., :height, :width] if padded else logits


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
