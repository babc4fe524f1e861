"""Built-in synthetic OpenEDS: IR-like eye images with 4-class labels, in the Kaggle layout.

Lets every command run without credentials or network. Deterministic per seed: sample i
of a split depends only on (seed, split, i).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionassist_seg.atomic_write import open_atomic, write_bytes_atomic
from visionassist_seg.ops.sample import HEIGHT, WIDTH

SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
CLOSED_EYE_RATE = 0.08
BORDER_PUPIL_RATE = 0.08


@dataclass(frozen=True)
class EyeGeometry:
    """Where the eye parts of one synthetic frame are, in pixels."""

    centre: tuple[float, float]  # (x, y) of the iris/pupil centre
    pupil_radius: float
    iris_radius: float
    sclera_axes: tuple[float, float]
    lid_opening: float  # half height of the visible eye opening at its centre
    glints: tuple[tuple[float, float], ...]


def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    return xs, ys


def sample_geometry(rng: np.random.Generator) -> EyeGeometry:
    """Return random eye geometry: mostly centred open eyes, some closed, some at the border."""
    kind = rng.random()
    if kind < BORDER_PUPIL_RATE:
        cx = float(rng.choice([rng.uniform(-10, 30), rng.uniform(WIDTH - 30, WIDTH + 10)]))
        cy = float(rng.uniform(120, HEIGHT - 120))
    else:
        cx = float(rng.uniform(220, WIDTH - 220))
        cy = float(rng.uniform(150, HEIGHT - 150))
    iris = float(rng.uniform(70, 105))
    pupil = float(rng.uniform(0.25, 0.5) * iris)
    closed = BORDER_PUPIL_RATE <= kind < BORDER_PUPIL_RATE + CLOSED_EYE_RATE
    opening = 0.0 if closed else float(rng.uniform(90, 150))
    n_glints = int(rng.integers(1, 5))
    glints = tuple(
        (cx + float(rng.uniform(-1.2, 1.2) * pupil), cy + float(rng.uniform(-1.2, 1.2) * pupil)) for _ in range(n_glints)
    )
    return EyeGeometry((cx, cy), pupil, iris, (float(rng.uniform(220, 280)), float(rng.uniform(110, 150))), opening, glints)


def render_eye(geometry: EyeGeometry, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (image uint8 (H, W), label uint8 (H, W) with 0 bg, 1 sclera, 2 iris, 3 pupil)."""
    import cv2

    xs, ys = _grid()
    cx, cy = geometry.centre
    r2 = (xs - cx) ** 2 + (ys - cy) ** 2
    eye_x = WIDTH / 2 + (cx - WIDTH / 2) * 0.3
    sa, sb = geometry.sclera_axes
    sclera = ((xs - eye_x) / sa) ** 2 + ((ys - cy) / sb) ** 2 <= 1.0
    # Eyelids: the visible opening narrows towards the eye corners (a lens shape).
    half = geometry.lid_opening * np.clip(1.0 - ((xs - eye_x) / (sa * 1.05)) ** 2, 0.0, None)
    visible = np.abs(ys - cy) < half  # a closed eye (half = 0) shows nothing
    label = np.zeros((HEIGHT, WIDTH), np.uint8)
    label[sclera & visible] = 1
    label[(r2 <= geometry.iris_radius**2) & visible] = 2
    label[(r2 <= geometry.pupil_radius**2) & visible] = 3

    skin = rng.uniform(95, 135)
    tone = np.array([skin, rng.uniform(165, 200), rng.uniform(60, 95), rng.uniform(8, 30)], np.float32)
    image = tone[label]
    image += (xs - WIDTH / 2) * rng.uniform(-0.04, 0.04) + (ys - HEIGHT / 2) * rng.uniform(-0.05, 0.05)
    for gx, gy in geometry.glints:
        glint = (xs - gx) ** 2 + (ys - gy) ** 2 <= rng.uniform(2, 5) ** 2
        image[glint & visible] = rng.uniform(230, 255)
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=float(rng.uniform(0.8, 1.8)))
    image += rng.normal(0.0, rng.uniform(3.0, 8.0), size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_sample(seed: int, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the deterministic synthetic (image, 4-class label) number ``index`` of ``split``."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    return render_eye(sample_geometry(rng), rng)


def split_counts(count: int) -> dict[str, int]:
    """Return samples per split for ``count`` train samples (validation and test get a quarter)."""
    quarter = max(1, count // 4)
    return {"train": count, "validation": quarter, "test": quarter}


def write_synthetic_raw(raw_dir: Path, count: int, seed: int = 0) -> Path:
    """Write a synthetic raw tree in the Kaggle layout under ``raw_dir``; return its data root.

    Layout: ``openEDS/openEDS/{train,validation,test}/images/*.png`` and
    ``{train,validation}/labels/*.npy`` (int64 labels, as some OpenEDS copies store them).
    Files are written to a temporary name and renamed, so an interrupted run leaves no
    half-written file.
    """
    import cv2

    root = Path(raw_dir) / "openEDS" / "openEDS"
    for split, n in split_counts(count).items():
        image_dir = root / split / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir = root / split / "labels"
        if split != "test":
            label_dir.mkdir(parents=True, exist_ok=True)
        for index in range(n):
            stem = f"{SPLIT_IDS[split]:01d}{index:06d}"
            image, label = make_sample(seed, split, index)
            ok, png = cv2.imencode(".png", image)
            write_bytes_atomic(image_dir / f"{stem}.png", png.tobytes())
            if split != "test":
                with open_atomic(label_dir / f"{stem}.npy") as handle:
                    np.save(handle, label.astype(np.int64))
    return root
