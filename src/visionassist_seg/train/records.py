"""What a training run records besides checkpoints: config.json, metrics.csv rows and, when set up, MLflow."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from visionassist_seg.settings import Settings

METRIC_FIELDS = (
    "epoch", "train_loss", "val_loss", "val_pupil_iou", "val_background_iou", "val_miou",
    "challenge_score", "lr", "alpha", "seconds", "samples_per_s",
)  # fmt: skip


def write_config(settings: Settings, run_dir: Path, extra: dict) -> None:
    """Write config.json: the run's settings (secrets masked) and ``extra`` facts resolved at start."""
    config = {**settings.masked_dump(), **extra}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")


def write_metrics(path: Path, rows: list[dict]) -> None:
    """Rewrite metrics.csv with one row per finished epoch (rewritten whole, so resume cannot duplicate rows)."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


class MlflowRun:
    """Logs params, per-epoch metrics and artifacts to MLflow when it is installed and MLFLOW_TRACKING_URI is set."""

    def __init__(self, settings: Settings, run_name: str) -> None:
        self.mlflow = None
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            return
        try:
            import mlflow
        except ImportError:
            return
        self.mlflow = mlflow
        mlflow.start_run(run_name=run_name)
        params = {}  # dotted names (train.lr); no credentials, no Modal plumbing
        for name, value in settings.model_dump(mode="json", exclude={"hub": {"token"}, "modal": True}).items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            params.update({f"{name}.{key}" if key else name: str(item) for key, item in items})
        mlflow.log_params(params)

    def log_epoch(self, row: dict) -> None:
        if self.mlflow is not None:
            self.mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def finish(self, run_dir: Path) -> None:
        if self.mlflow is not None:
            self.mlflow.log_artifacts(str(run_dir))
            self.mlflow.end_run()
