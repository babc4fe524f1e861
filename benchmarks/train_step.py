"""Training-step throughput: vaseg's step vs a plain reference step, same model, same run.

One step = forward + loss + backward + Adam update on a batch at full resolution
(400x640). The reference step is the published one written plainly: default (NCHW)
memory layout, float32, activations not in place, RITnet's losses (one-hot built in numpy on the host, the
weighted CE as a scalar times the weights). vaseg's step uses channels_last (kept through
the 1-channel concatenations), in-place activations and its own losses, and on CUDA also bf16/fp16 autocast and (with --compile) torch.compile.
Both use the same model with torch's nn.Dropout (19 layers, as the reference).
The training DataLoader's samples/s for the same batch shape and device is printed
beside it, to show the loader is not the bottleneck.

    python benchmarks/train_step.py                   # CPU, batch 4, 3 timed steps each
    python benchmarks/train_step.py --steps 5
    python benchmarks/train_step.py --device cuda --batch-size 32 --compile   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch  # first: pyarrow's thread pool must not be set up before torch's OpenMP (see train/rows.py)
import numpy as np
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from visionassist_seg.train.losses import combined_loss
from visionassist_seg.train.model import ShallowNet

EPOCH_SAMPLES = 27_000


def reference_loss(logits, target, weights, dist_map, alpha):  # the published loss, as RITnet wrote it
    ce = F.cross_entropy(logits, target)
    ce_w = (ce * (1.0 + weights)).mean()
    one_hot = (np.arange(2) == target.cpu().numpy()[..., None]).astype(np.uint8)
    one_hot = torch.from_numpy(np.rollaxis(one_hot, 3, start=1)).to(logits.device).flatten(2).float()
    probs = torch.softmax(logits, dim=1).flatten(2)
    class_weights = 1.0 / torch.clamp(one_hot.sum(dim=2) ** 2, min=1e-5)
    dice = 2.0 * (class_weights * (probs * one_hot).sum(2)).sum(1) / (class_weights * (probs + one_hot).sum(2)).sum(1)
    gdl = (1.0 - dice.clamp(min=1e-5)).mean()
    surface = (torch.softmax(logits, dim=1).flatten(2) * dist_map.flatten(2)).mean(2).mean(1).mean()
    return ce_w + alpha * gdl + (1 - alpha) * surface


def make_batch(batch_size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    label = torch.zeros(batch_size, 400, 640, dtype=torch.long)
    label[:, 150:250, 270:370] = 1
    return {
        "image": (torch.rand(batch_size, 1, 400, 640, generator=generator) * 255).to(device),
        "label": label.to(device),
        "spatial_weights": torch.zeros(batch_size, 400, 640).to(device),
        "dist_map": (torch.rand(batch_size, 2, 400, 640, generator=generator) - 0.5).to(device),
    }


def time_steps(step, steps: int, device: torch.device, warmup: int = 1) -> float:
    """Return mean seconds per call of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def reference_step_fn(batch, device):
    model = ShallowNet().to(device)
    for module in model.modules():  # RITnet's activations are not in place
        if isinstance(module, torch.nn.LeakyReLU):
            module.inplace = False
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = reference_loss(model(batch["image"]), batch["label"], batch["spatial_weights"], batch["dist_map"], 0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def vaseg_step_fn(batch, device, *, amp: bool, compile_model: bool):
    model = ShallowNet().to(device).to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_model else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    image = batch["image"].contiguous(memory_format=torch.channels_last)
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if amp and device.type == "cuda" else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = net(image)
        loss = combined_loss(logits, batch["label"], batch["spatial_weights"], batch["dist_map"], 0.5)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def loader_rate(batch_size: int, workers: int, samples: int, device: str) -> float:
    """Return samples/s of the training DataLoader at full resolution, batches moved to ``device`` (second epoch), on a small synthetic dataset."""
    sys_path = Path(__file__).parent
    import sys

    sys.path.insert(0, str(sys_path))
    from loader import make_dataset, vaseg_loader

    with tempfile.TemporaryDirectory() as tmp:
        dataset = make_dataset(Path(tmp), samples, seed=0)
        return vaseg_loader(dataset, samples, batch_size, workers, 1.0, epochs=2, device=device)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per implementation")
    parser.add_argument("--compile", action="store_true", help="also time vaseg's step under torch.compile")
    parser.add_argument("--no-reference", action="store_true", help="skip the (slow) reference step")
    parser.add_argument("--loader-workers", type=int, default=1, help="worker processes for the loader row")
    parser.add_argument("--loader-samples", type=int, default=32, help="samples for the loader row (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    batch = make_batch(args.batch_size, device)
    rows: dict[str, float] = {}
    if not args.no_reference:
        rows["reference (NCHW, float32, RITnet losses)"] = time_steps(reference_step_fn(batch, device), args.steps, device)
    amp = device.type == "cuda"
    label = "vaseg (channels_last" + (", AMP" if amp else "") + ")"
    rows[label] = time_steps(vaseg_step_fn(batch, device, amp=amp, compile_model=False), args.steps, device)
    if args.compile:
        if device.type == "cpu" and not shutil.which("g++") and not shutil.which("c++"):
            Console().print("[yellow]--compile skipped: no C++ compiler on PATH[/]")
        else:
            rows[label[:-1] + ", compile)"] = time_steps(
                vaseg_step_fn(batch, device, amp=amp, compile_model=True), args.steps, device, warmup=3
            )
    loader = loader_rate(args.batch_size, args.loader_workers, args.loader_samples, args.device) if args.loader_samples else None

    reference = next((v for k, v in rows.items() if k.startswith("reference")), None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    table = Table(title=f"ShallowNet train step, batch {args.batch_size}, 400x640, {name}")
    for column in ("step", "s/step", "samples/s", "x reference", f"{EPOCH_SAMPLES:,}-sample epoch"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for key, seconds in rows.items():
        rate = args.batch_size / seconds
        ratio = f"{reference / seconds:.2f}" if reference else "-"
        table.add_row(key, f"{seconds:.3f}", f"{rate:.2f}", ratio, f"{EPOCH_SAMPLES / rate:,.0f} s")
    if loader is not None:
        table.add_row(f"vaseg loader ({args.loader_workers} worker processes), for comparison", "", f"{loader:.1f}", "", "")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"seconds_per_step": rows, "loader_samples_per_s": loader}, indent=2))


if __name__ == "__main__":
    main()
