"""`vaseg evaluate`: a model's pupil IoU, mIoU and challenge score over a dataset split, plus per-sample errors.

The split is indexed as training indexes it (`index_dataset`) and scored by the training
scores (`IoUSums`, `challenge_score`), so a checkpoint's numbers equal the validation
numbers its training run logged. A `.pt` checkpoint is read by the training loader
(`PupilDataset`, `make_loader`) and runs at its training scale exactly as the training
loop's validation does (torch, the `train` extra). An ONNX model takes the 400x640 frames
(its resizing, if any, is inside the graph), read by `split_batches` with the same
`prepare_sample` in this process: torch is not imported.
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

import cv2
import numpy as np

from visionassist_seg.errors import VasegError
from visionassist_seg.infer.geometry import fit_pupil, mask_centroid, pupil_mask
from visionassist_seg.infer.models import OnnxSegmenter, TorchSegmenter, count_onnx_parameters
from visionassist_seg.infer.overlay import draw_evaluation
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.train.samples import split_batches
from visionassist_seg.train.scores import IoUSums, challenge_score
from visionassist_seg.train.split_index import SplitIndex, index_dataset


@dataclass
class SampleResult:
    """One row of the split: its pupil IoU, centre error (px) and area error (predicted - label, px)."""

    index: int
    filename: str | None
    iou: float
    center_error: float | None
    area_error: int
    label_area: int
    predicted_area: int


@dataclass
class EvaluationReport:
    """A model's scores over one split; ``worst`` lists the lowest-IoU samples first."""

    model: str
    layout: str
    dataset: str
    split: str
    pupil_iou: float
    background_iou: float
    miou: float
    challenge_score: float
    parameters: int
    samples: list[SampleResult]
    worst: list[SampleResult]
    overlays: list[str] = field(default_factory=list)

    @property
    def median_center_error(self) -> float | None:
        errors = [s.center_error for s in self.samples if s.center_error is not None]
        return float(np.median(errors)) if errors else None

    def to_json(self) -> dict:
        """Return the report as JSON-ready data (top level: the split's scores; ``samples``: every row)."""
        data = asdict(self)
        data["rows"] = len(self.samples)
        data["median_center_error"] = self.median_center_error
        data["worst"] = [sample.index for sample in self.worst]
        return data

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def dataset_folder(dataset: Path | None, hf_repo: str | None, revision: str | None = None) -> Path:
    """Return the local folder of the dataset to evaluate on, downloading a Hub dataset into the Hub cache.

    Raises:
        VasegError: neither or both sources given, or the folder does not exist.
    """
    if (dataset is None) == (hf_repo is None):
        raise VasegError("Pass the data to evaluate on: either --dataset DIR or --hf-repo ID (one of them).", exit_code=2)
    if hf_repo is not None:
        from visionassist_seg.hub import download_dataset

        return download_dataset(hf_repo, revision=revision)
    if not dataset.is_dir():
        raise VasegError(f"Dataset folder {dataset} does not exist. Pass --dataset a `vaseg precompute` output folder.")
    return dataset


def split_index(folder: Path, split: str, limit: int | None = None) -> SplitIndex:
    """Return the index of one split of a dataset folder (first ``limit`` rows if given)."""
    indexes = index_dataset(folder, limit)
    if split not in indexes:
        raise VasegError(f"--split {split!r} is not in {folder}; use one of {', '.join(indexes)}.", exit_code=2)
    return indexes[split]


def evaluate_model(
    segmenter: OnnxSegmenter | TorchSegmenter,
    index: SplitIndex,
    *,
    dataset: str = "",
    batch_size: int = 8,
    workers: int = 0,
    worst: int = 10,
    overlays_dir: Path | None = None,
    on_samples: Callable[[int], None] = lambda n: None,
) -> EvaluationReport:
    """Return the model's scores over ``index``'s rows; draw the ``worst`` samples into ``overlays_dir`` if given.

    Memory holds one batch (and the ``worst`` overlay images), whatever the split's size.
    """
    names = iter(_filenames(index))
    iou = IoUSums(2)
    samples: list[SampleResult] = []
    kept: list[tuple] = []  # heap of the worst samples so far, highest IoU on top
    with _predictions(segmenter, index, batch_size, workers) as predictions:
        for images, labels, logits in predictions:
            prediction = pupil_mask(logits)
            iou.update(prediction, labels)
            for k in range(len(labels)):
                result = _score(len(samples), next(names, None), logits[k], prediction[k], labels[k])
                samples.append(result)
                if overlays_dir is not None and worst > 0:
                    entry = (-result.iou, -result.index, result, images[k].copy(), labels[k].copy(), prediction[k].copy())
                    (heapq.heappush if len(kept) < worst else heapq.heappushpop)(kept, entry)
            on_samples(len(labels))
    if not samples:
        raise VasegError(f"The {index.split} split of {dataset} has no rows to evaluate. Check --dataset/--hf-repo and --limit.")
    ranked = sorted(samples, key=lambda s: (s.iou, -(s.center_error or 0.0), s.index))[: max(0, worst)]
    per_class = iou.per_class()
    if isinstance(segmenter, TorchSegmenter):
        from visionassist_seg.train.model import count_parameters

        parameters = count_parameters(segmenter.model)
    else:
        parameters = count_onnx_parameters(segmenter.path)
    report = EvaluationReport(
        model=str(segmenter.path), layout=segmenter.layout, dataset=dataset, split=index.split,
        pupil_iou=per_class[1], background_iou=per_class[0], miou=iou.mean(),
        # A graph without weights (a stub) has size 0: min(1, 1 / S) is then 1, as for one parameter.
        challenge_score=challenge_score(iou.mean(), max(parameters, 1)), parameters=parameters, samples=samples, worst=ranked,
    )  # fmt: skip
    if overlays_dir is not None:
        report.overlays = _write_overlays(sorted(kept, key=lambda e: (-e[0], -e[1])), overlays_dir)
    return report


@contextmanager
def _predictions(
    segmenter: OnnxSegmenter | TorchSegmenter, index: SplitIndex, batch_size: int, workers: int
) -> Iterator[Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Give an iterator of (images, labels at 400x640, logits at 400x640) per batch, as numpy arrays.

    An ONNX model gets `split_batches` (read in this process, no torch). A checkpoint reads
    the training loop's validation dataset and loader (``workers`` processes; stopped when
    the ``with`` body ends, also on an error).
    """
    if not isinstance(segmenter, TorchSegmenter):
        yield ((images, labels, segmenter.logits(images)) for images, labels in split_batches(index, batch_size))
        return
    from visionassist_seg.train.loader import PupilDataset, make_loader, stopping_workers

    # The dataset and loader the training loop's validation reads (no pinning: batches stay on the CPU for scoring).
    scale = segmenter.scale
    batches = make_loader(PupilDataset(index, train=False, scale=scale, full_labels=scale < 1), batch_size, workers)
    with stopping_workers(batches):
        yield _checkpoint_predictions(segmenter, batches)


def _checkpoint_predictions(segmenter: TorchSegmenter, batches) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (images, labels, logits) of a checkpoint as the training loop's `evaluate` runs it.

    At its training size, channels_last where the loop uses it, under the run's autocast
    on CUDA, logits upsampled to the full labels.
    """
    import torch

    from visionassist_seg.train.device import amp_dtype_for, to_device
    from visionassist_seg.train.export import upsample_logits

    for batch in batches:
        labels = batch.get("label_full", batch["label"]).numpy()
        images = batch["image"][:, 0].numpy()
        moved = to_device(batch, segmenter.device, segmenter.channels_last)
        amp_dtype = amp_dtype_for(segmenter.device, segmenter.amp)
        with torch.no_grad(), torch.autocast(segmenter.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = segmenter.model(moved["image"])
        logits = upsample_logits(logits.float(), (HEIGHT, WIDTH))
        yield images, labels, logits.cpu().numpy()


def _score(index: int, filename: str | None, logits: np.ndarray, prediction: np.ndarray, label: np.ndarray) -> SampleResult:
    """Return one sample's pupil IoU (1 when neither has a pupil), centre error and area error."""
    truth = label.astype(bool)
    inter = int(np.count_nonzero(prediction & truth))
    predicted, actual = int(np.count_nonzero(prediction)), int(np.count_nonzero(truth))
    union = predicted + actual - inter
    fit = fit_pupil(logits)
    centroid = mask_centroid(truth)
    error = None
    if fit.pupil and centroid is not None:
        error = round(math.hypot(fit.center_x - centroid[0], fit.center_y - centroid[1]), 3)
    return SampleResult(index, filename, 1.0 if union == 0 else round(inter / union, 6), error, predicted - actual, actual, predicted)


def _filenames(index: SplitIndex) -> Iterator[str | None]:
    """Yield the filename of every row of ``index`` in order (None where a shard has no filename column)."""
    import pyarrow.parquet as pq

    cache: dict[tuple[str, int], list] = {}
    for piece in index.slices:
        key = (piece.path, piece.row_group)
        if key not in cache:
            cache.clear()  # slices of one row group are consecutive: keep one group's names
            parquet = pq.ParquetFile(piece.path)
            has_names = "filename" in parquet.schema_arrow.names
            group_rows = parquet.metadata.row_group(piece.row_group).num_rows
            cache[key] = (
                parquet.read_row_group(piece.row_group, columns=["filename"]).column(0).to_pylist() if has_names else [None] * group_rows
            )
        yield from cache[key][piece.start : piece.stop]


def _write_overlays(entries: list[tuple], folder: Path) -> list[str]:
    """Write each kept sample as ``{rank:02d}-{filename or index}.png``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, (_, _, result, image, label, prediction) in enumerate(entries, 1):
        if image.shape != label.shape:  # a checkpoint trained below 400x640 sees a smaller image
            image = cv2.resize(image, (label.shape[1], label.shape[0]), interpolation=cv2.INTER_LINEAR)
        error = "n/a" if result.center_error is None else f"{result.center_error:.1f}px"
        caption = f"#{rank} {result.filename or result.index}  IoU {result.iou:.3f}  centre error {error}"
        path = folder / f"{rank:02d}-{_safe(result.filename or str(result.index))}.png"
        cv2.imwrite(str(path), draw_evaluation(image, label, prediction, caption))
        paths.append(str(path))
    return paths


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
