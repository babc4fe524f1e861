"""Per-split dataset statistics, accumulated row group by row group in bounded memory."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AREA_PERCENTILES = (5, 50, 95)


@dataclass
class SplitStatistics:
    """Running totals of one split; ``merge`` adds a worker's partial totals."""

    rows: int = 0
    pixels: int = 0
    image_sum: int = 0
    image_sum_squares: int = 0
    pupil_areas: list[int] = field(default_factory=list)  # one int per row: 30,000 rows stay small

    def add_batch(self, image: np.ndarray, label: np.ndarray) -> None:
        """Add a batch of rows.

        Shape:
            image: (N, H, W) uint8; label: (N, H, W) 0/1
        """
        values = image.astype(np.int64).reshape(-1)
        areas = (label == 1).reshape(label.shape[0], -1).sum(axis=1)
        self.rows += int(image.shape[0])
        self.pixels += int(values.size)
        self.image_sum += int(values.sum())
        self.image_sum_squares += int(values @ values)
        self.pupil_areas += [int(a) for a in areas]

    def merge(self, other: SplitStatistics) -> None:
        """Add ``other``'s totals to these."""
        self.rows += other.rows
        self.pixels += other.pixels
        self.image_sum += other.image_sum
        self.image_sum_squares += other.image_sum_squares
        self.pupil_areas += other.pupil_areas

    def summary(self) -> dict[str, float | int | None]:
        """Return rows, pupil share, pupil-area percentiles (px, rows with a pupil) and image mean/std."""
        areas = np.asarray([a for a in self.pupil_areas if a > 0], dtype=np.float64)
        mean = self.image_sum / self.pixels if self.pixels else None
        std = None
        if self.pixels and mean is not None:
            std = float(np.sqrt(max(0.0, self.image_sum_squares / self.pixels - mean * mean)))
        out: dict[str, float | int | None] = {
            "rows": self.rows,
            "pupil_share": (len(areas) / self.rows) if self.rows else None,
            "image_mean": mean,
            "image_std": std,
        }
        for q in AREA_PERCENTILES:
            out[f"pupil_area_p{q}"] = float(np.percentile(areas, q)) if len(areas) else None
        return out


def describe(summary: dict[str, float | int | None]) -> str:
    """Return a one-line human summary of `SplitStatistics.summary()`."""

    def fmt(value: float | int | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    areas = "/".join(fmt(summary[f"pupil_area_p{q}"], ".0f") for q in AREA_PERCENTILES)
    return (
        f"{summary['rows']} rows; pupil in {fmt(summary['pupil_share'], '.1%')}; "
        f"pupil area p{'/p'.join(map(str, AREA_PERCENTILES))} {areas} px; "
        f"image mean {fmt(summary['image_mean'], '.2f')}, std {fmt(summary['image_std'], '.2f')}"
    )
