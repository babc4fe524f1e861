"""Where training runs: the torch device for ``--device``, its autocast dtype, and batches moved onto it.

Shared by the training loop and `vaseg evaluate`, which must run a checkpoint exactly as
the loop's validation did.
"""

from __future__ import annotations

import torch

from visionassist_seg.errors import VasegError


def resolve_device(name: str) -> torch.device:
    """Return the torch device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises:
        VasegError: the named device is not available here.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VasegError(f"Unknown --device {name!r}. Use auto, cpu, cuda, cuda:N or mps.", exit_code=2) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VasegError(f"--device {name} asked for CUDA, but this torch ({torch.__version__}) sees no CUDA GPU. Use --device cpu or auto.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VasegError(f"--device {name} asked for Apple MPS, which is not available here. Use --device cpu or auto.")
    return device


def amp_dtype_for(device: torch.device, amp: bool) -> torch.dtype | None:
    """Return the autocast dtype (bfloat16 where supported, else float16) on CUDA with ``amp``; None otherwise."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def to_device(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    """Return the batch on ``device``: image as float (channels_last if asked), label as int64."""
    non_blocking = device.type == "cuda"  # the loader pins memory on CUDA: the copy overlaps the step
    out = {name: tensor.to(device, non_blocking=non_blocking) for name, tensor in batch.items()}
    image = out["image"].float()
    out["image"] = image.contiguous(memory_format=torch.channels_last) if channels_last else image
    out["label"] = out["label"].long()
    return out
