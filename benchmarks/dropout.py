"""Dropout on CPU: ways to draw ShallowNet's 19 dropout masks, timed in a full training step.

One step = forward + loss + backward + Adam update of ShallowNet (channels_last, as vaseg
trains on CPU) on a batch at each size. Every candidate swaps all 19 dropout layers of
the same model for its own module; "identity" (no dropout at all) is the lower bound.
Candidates are timed in rounds, in a rotated order each round, and each row reports the
median ms/step over the rounds and the median per-round ratio to nn.Dropout (same round,
so a noisy shared machine slows both sides of a ratio alike).

    python benchmarks/dropout.py                                   # 100x160 batch 8 and 400x640 batch 2
    python benchmarks/dropout.py --sizes 100x160x8 --rounds 5 --threads 1
    python benchmarks/dropout.py --profile                         # where nn.Dropout's time goes

Candidates (p = 0.2, scale = 1 / (1 - p)):

- ``nn.Dropout``: torch's own (today's model); on CPU a float mask from ``bernoulli_``.
- ``nn.Dropout(inplace=True)``: the 18 dropouts after a convolution in place (the one
  before the output conv reads a LeakyReLU output that backward needs, so stays).
- ``bool bernoulli_``: the mask drawn as bool, then ``x * (mask * scale)``.
- ``rand >= p``: a float32 uniform per element (p rounded to 2^-24).
- ``aten.native_dropout``: torch's fused-kernel entry point (on CPU the same bernoulli_).
- ``32-bit threshold``: 32 random bits per element compared with round(p * 2^32).
- ``vaseg``: the model's own dropout layers (visionassist_seg.train.model.Dropout: about
  8 random bits per element, exact p).
- ``vaseg(inplace=True)``: the same, the 18 after a convolution in place.
- ``identity``: no dropout.

``--threads 1`` shows torch.set_num_threads' effect; channels_last is what vaseg's CPU
training uses (dropout is elementwise, its cost does not depend on the layout).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from visionassist_seg.train.losses import combined_loss
from visionassist_seg.train.model import ShallowNet


def _layout(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the flat ``mask`` as ``x``'s shape, in ``x``'s memory format (contiguous or channels_last)."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return mask.as_strided(x.shape, x.stride())
    return mask.view(x.shape)


class _MaskDropout(nn.Dropout):
    """An nn.Dropout that draws its own float mask (scale where kept, 0 where dropped) on CPU."""

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.device.type != "cpu" or not 0 < self.p < 1:
            return super().forward(x)
        return x * self.mask(x)


class BoolBernoulli(_MaskDropout):
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.empty_like(x, dtype=torch.bool).bernoulli_(1 - self.p)
        return keep * (1 / (1 - self.p))


class RandThreshold(_MaskDropout):
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        return torch.ge(torch.rand_like(x), self.p, out=out).mul_(1 / (1 - self.p))


class NativeDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.native_dropout(x, self.p, self.training)[0]


class Bits32Threshold(_MaskDropout):
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        n = x.numel()
        words = torch.empty((n + 1) // 2, dtype=torch.int64).random_(-(2**63), None)
        bound = round(self.p * 2**32) - 2**31  # int32 values below it: probability p (to 2^-32)
        mask = torch.ge(words.view(torch.int32)[:n], bound, out=torch.empty(n, dtype=x.dtype))
        return _layout(mask.mul_(1 / (1 - self.p)), x)


def _plain(p: float) -> nn.Module:
    return nn.Dropout(p)


CANDIDATES: dict[str, Callable[[float], nn.Module] | None] = {
    "nn.Dropout": _plain,
    "nn.Dropout(inplace=True)": None,  # set on the model (see build_model)
    "bool bernoulli_": BoolBernoulli,
    "rand >= p": RandThreshold,
    "aten.native_dropout": NativeDropout,
    "32-bit threshold": Bits32Threshold,
    "vaseg": None,  # the model's own dropout modules, untouched
    "vaseg(inplace=True)": None,  # the model's own, the 18 after a convolution in place
    "identity": lambda p: nn.Identity(),
}


def build_model(name: str) -> nn.Module:
    """Return ShallowNet (seed 0, channels_last) with its 19 dropout layers swapped for candidate ``name``'s."""
    torch.manual_seed(0)
    model = ShallowNet()
    factory = CANDIDATES[name]
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, nn.Dropout):
                continue
            if name == "nn.Dropout(inplace=True)":
                swapped = nn.Dropout(child.p, inplace=parent is not model)
            elif name == "vaseg(inplace=True)":
                swapped = child
                child.inplace = parent is not model
            elif factory is None:
                swapped = child
            else:
                swapped = factory(child.p)
            setattr(parent, child_name, swapped)
    return model.to(memory_format=torch.channels_last).train()


def make_batch(batch_size: int, height: int, width: int) -> dict[str, torch.Tensor]:
    """Return a synthetic batch (a square pupil, random image and distance map) at ``height`` x ``width``."""
    generator = torch.Generator().manual_seed(0)
    label = torch.zeros(batch_size, height, width, dtype=torch.long)
    label[:, height * 3 // 8 : height * 5 // 8, width * 27 // 64 : width * 37 // 64] = 1
    image = torch.rand(batch_size, 1, height, width, generator=generator) * 255
    return {
        "image": image.contiguous(memory_format=torch.channels_last),
        "label": label,
        "spatial_weights": torch.zeros(batch_size, height, width),
        "dist_map": torch.rand(batch_size, 2, height, width, generator=generator) - 0.5,
    }


def step_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = combined_loss(model(batch["image"]), batch["label"], batch["spatial_weights"], batch["dist_map"], 0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def time_size(
    names: list[str], batch_size: int, height: int, width: int, *, rounds: int, steps: int, warmup: int
) -> dict[str, list[float]]:
    """Return ms/step per candidate, one mean over ``steps`` steps per round, candidates rotated each round."""
    batch = make_batch(batch_size, height, width)
    steps_by_name = {name: step_fn(build_model(name), batch) for name in names}
    for step in steps_by_name.values():
        torch.manual_seed(0)
        for _ in range(warmup):
            step()
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            torch.manual_seed(round_index)
            started = time.perf_counter()
            for _ in range(steps):
                steps_by_name[name]()
            results[name].append((time.perf_counter() - started) / steps * 1e3)
    return results


def profile(batch_size: int, height: int, width: int, steps: int) -> None:
    """Print torch.profiler's table of ops for ``steps`` steps of today's model (nn.Dropout)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = step_fn(build_model("nn.Dropout"), make_batch(batch_size, height, width))
    step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def parse_size(text: str) -> tuple[int, int, int]:
    height, width, batch = (int(v) for v in text.lower().split("x"))
    return height, width, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["100x160x8", "400x640x2"], help="HEIGHTxWIDTHxBATCH")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES), metavar="NAME")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of timing, candidates rotated each round")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per candidate per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per candidate before the rounds")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--profile", action="store_true", help="print torch.profiler's op table for nn.Dropout at the first size, then stop"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        height, width, batch = parse_size(args.sizes[0])
        profile(batch, height, width, args.steps)
        return
    names = list(dict.fromkeys(args.candidates))
    output = {}
    console = Console(width=120)
    for size in args.sizes:
        height, width, batch = parse_size(size)
        results = time_size(names, batch, height, width, rounds=args.rounds, steps=args.steps, warmup=args.warmup)
        base = results.get("nn.Dropout")
        floor = results.get("identity")
        table = Table(
            title=f"ShallowNet train step, {height}x{width}, batch {batch}, CPU ({torch.get_num_threads()} threads), "
            f"{args.rounds} rounds x {args.steps} steps"
        )
        for column in ("dropout", "ms/step (median)", "min-max", "nn.Dropout / this", "this / identity"):
            table.add_column(column, justify="left" if column == "dropout" else "right")
        output[size] = {}
        for name, times in results.items():
            ratio = statistics.median(b / t for b, t in zip(base, times)) if base else math.nan
            over_floor = statistics.median(t / f for t, f in zip(times, floor)) if floor else math.nan
            output[size][name] = {"ms_per_step": times, "speedup_vs_nn_dropout": ratio, "vs_identity": over_floor}
            table.add_row(
                name, f"{statistics.median(times):.0f}", f"{min(times):.0f}-{max(times):.0f}", f"{ratio:.2f}", f"{over_floor:.2f}"
            )
        console.print(table)
    if args.json:
        args.json.write_text(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
