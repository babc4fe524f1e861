"""Rich tables for evaluate's report and predict's summary (plain text: user strings show as typed)."""

from __future__ import annotations

from rich.table import Table

from visionassist_seg.infer.evaluate import EvaluationReport


def evaluation_tables(report: EvaluationReport) -> list[Table]:
    """Return the scores table and the worst-samples table of an evaluation."""
    scores = Table(title=f"{report.model} ({report.layout}) on {report.dataset} [{report.split}]")
    scores.add_column("metric")
    scores.add_column("value", justify="right")
    median = report.median_center_error
    for name, value in (
        ("samples", f"{len(report.samples)}"),
        ("pupil IoU", f"{report.pupil_iou:.4f}"),
        ("background IoU", f"{report.background_iou:.4f}"),
        ("mIoU", f"{report.miou:.4f}"),
        ("challenge score", f"{report.challenge_score:.4f} ({report.parameters:,} parameters)"),
        ("median pupil-centre error", "n/a" if median is None else f"{median:.2f} px"),
    ):
        scores.add_row(name, value)
    worst = Table(title=f"Worst {len(report.worst)} samples by pupil IoU")
    for column in ("rank", "row", "filename", "IoU", "centre error (px)", "area error (px)"):
        worst.add_column(column, justify="left" if column == "filename" else "right")
    for rank, sample in enumerate(report.worst, 1):
        error = "n/a" if sample.center_error is None else f"{sample.center_error:.2f}"
        worst.add_row(str(rank), str(sample.index), sample.filename or "", f"{sample.iou:.4f}", error, f"{sample.area_error:+d}")
    return [scores, worst] if report.worst else [scores]
