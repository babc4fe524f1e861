"""Training-loader throughput: vaseg's training DataLoader vs the reference loader, same files, same run.

The reference loader is the published one written plainly: `datasets.load_dataset`
over the parquet shards (building its Arrow cache first, not timed), rows decoded as
Python lists, gamma + CLAHE re-applied to every image at load time, a random flip and
`torch.tensor` collation. vaseg is the DataLoader `vaseg train` builds (`make_loader`
over a `PupilDataset`: each row decoded from its own parquet pages, no cache, no Python
lists, with the full augmentation, in worker processes kept between epochs, pinned
memory on CUDA); on ``--device cuda`` each batch is also copied to the GPU as the loop
does. Both deliver ready training batches; samples/s is counted at the consumer. vaseg
is timed over several epochs, as training reads it: the first epoch includes starting
the workers, later epochs are the steady state.

    python benchmarks/loader.py                       # 64 synthetic samples, batch 32, full resolution
    python benchmarks/loader.py --dataset DIR         # an existing precomputed dataset
    python benchmarks/loader.py --workers 0 1 2 --scale 0.25
    python benchmarks/loader.py --device cuda         # as training on a GPU reads it
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch  # first: pyarrow's thread pool must not be set up before torch's OpenMP (see train/rows.py)
import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from visionassist_seg.data.schema import list_shards
from visionassist_seg.train.loader import PupilDataset, make_loader, stopping_workers
from visionassist_seg.train.device import to_device
from visionassist_seg.train.split_index import index_dataset


def make_dataset(root: Path, samples: int, seed: int) -> Path:
    """Write ``samples`` synthetic train samples, precomputed, under ``root``; return the dataset folder."""
    from visionassist_seg.pipeline.precompute import run_precompute
    from visionassist_seg.data.synthetic import write_synthetic_raw
    from visionassist_seg.settings import load_settings

    write_synthetic_raw(root / "raw", samples, seed)
    settings = load_settings(workers=2, seed=seed, raw={"source": "synthetic", "dir": root / "raw"}, dataset={"dir": root / "dataset"})
    run_precompute(settings, download=False, progress=False)
    return root / "dataset"


def reference_loader(dataset: Path, samples: int, batch_size: int, cache_dir: Path) -> tuple[float, float]:
    """Return (seconds to build the Arrow cache, samples/s) of the published loader on the train shards."""
    import datasets

    started = time.perf_counter()
    files = [str(p) for p in list_shards(dataset)["train"]]
    table = datasets.load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=str(cache_dir))
    cache_seconds = time.perf_counter() - started
    gamma = (255.0 * np.linspace(0, 1, 256) ** 0.8).astype(np.uint8)
    clahe = cv2.createCLAHE(clipLimit=1.5, tileGridSize=(8, 8))
    rng = np.random.default_rng(0)
    count = min(samples, len(table))
    started = time.perf_counter()
    batch: list[tuple] = []
    for i in range(count):
        row = table[i]
        image = np.array(row["image"], dtype=np.uint8).reshape(400, 640)
        label = np.array(row["label"], dtype=np.uint8).reshape(400, 640)
        weights = np.array(row["spatial_weights"], dtype=np.float32).reshape(400, 640)
        dist = np.array(row["dist_map"], dtype=np.float32).reshape(2, 400, 640)
        image = clahe.apply(cv2.LUT(image, gamma))
        if rng.random() < 0.5:
            image, label = image[:, ::-1].copy(), label[:, ::-1].copy()
        batch.append((image, label, weights, dist))
        if len(batch) == batch_size or i == count - 1:
            _ = [torch.tensor(np.stack(column)) for column in zip(*batch)]
            batch = []
    return cache_seconds, count / (time.perf_counter() - started)


def vaseg_loader(
    dataset: Path, samples: int, batch_size: int, workers: int, scale: float, epochs: int, device: str = "cpu"
) -> list[float]:
    """Return samples/s of each of ``epochs`` epochs of augmented training batches (first ``samples`` rows).

    As training reads them: the loop's DataLoader for the whole run (worker processes
    kept between epochs), batches moved to ``device``. The first epoch also pays for
    starting the workers.
    """
    target = torch.device(device)
    index = index_dataset(dataset, samples)["train"]
    loader = make_loader(PupilDataset(index, train=True, seed=0, scale=scale), batch_size, workers, pin_memory=target.type == "cuda")
    rates = []
    with stopping_workers(loader):
        for epoch in range(epochs):
            count = 0
            started = time.perf_counter()
            loader.sampler.set_epoch(epoch)
            for batch in loader:
                count += len(to_device(batch, target, channels_last=True)["image"])
            if target.type == "cuda":
                torch.cuda.synchronize()
            rates.append(count / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, help="precomputed dataset folder (default: make a synthetic one)")
    parser.add_argument("--samples", type=int, default=64, help="train samples to make and to load")
    parser.add_argument("--reference-samples", type=int, default=32, help="samples the (slow) reference loader reads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="vaseg worker counts to measure")
    parser.add_argument("--scale", type=float, default=1.0, help="vaseg training scale (the reference has none)")
    parser.add_argument("--epochs", type=int, default=3, help="vaseg epochs per worker count (the first includes start-up)")
    parser.add_argument("--device", default="cpu", help="where vaseg's batches go, as in training: cpu or cuda")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    console = Console()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or make_dataset(Path(tmp), args.samples, seed=0)
        cache_seconds, reference = reference_loader(dataset, args.reference_samples, args.batch_size, Path(tmp) / "hf-cache")
        results = {"reference": reference, "reference_cache_seconds": cache_seconds}
        for workers in args.workers:
            results[f"vaseg_workers_{workers}"] = vaseg_loader(
                dataset, args.samples, args.batch_size, workers, args.scale, args.epochs, args.device
            )
    table = Table(title=f"Training loader, batch {args.batch_size}, scale {args.scale}, to {args.device} ({dataset.name})")
    for column in ("loader", "first epoch samples/s", "later epochs samples/s", "x reference (later epochs)"):
        table.add_column(column, justify="right" if column != "loader" else "left")
    table.add_row(f"reference (Python lists + gamma/CLAHE; Arrow cache built in {cache_seconds:.1f} s)", f"{reference:.1f}", f"{reference:.1f}", "1.0")
    for workers in args.workers:
        rates = results[f"vaseg_workers_{workers}"]
        steady = sum(rates[1:]) / len(rates[1:]) if len(rates) > 1 else rates[0]
        table.add_row(f"vaseg, {workers} worker processes", f"{rates[0]:.1f}", f"{steady:.1f}", f"{steady / reference:.1f}")
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
