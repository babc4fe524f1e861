import json

import cv2
import pytest
from infer_fixtures import eye

from visionassist_seg.infer.models import load_segmenter
from visionassist_seg.infer.predict import plan_inputs, run_predictions


def test_checkpoint_and_onnx_predict_the_same_pupil(trained_run, tmp_path):
    frame = tmp_path / "eye.png"
    cv2.imwrite(str(frame), eye(center=(330.0, 190.0), radius=35))
    rows = {}
    for name in ("best.pt", "best.onnx"):
        output = tmp_path / f"{name}.jsonl"
        summary = run_predictions(load_segmenter(trained_run / name, device="cpu"), plan_inputs([frame]), output)
        assert summary.frames == 1 and not summary.failed
        (rows[name],) = [json.loads(line) for line in output.read_text().splitlines()]
    a, b = rows["best.pt"], rows["best.onnx"]
    assert a["pupil"] == b["pupil"]
    if a["pupil"]:
        assert (a["center_x"], a["center_y"]) == pytest.approx((b["center_x"], b["center_y"]), abs=0.5)


def test_stage_seconds_are_reported(stub_models, tmp_path):
    frame = tmp_path / "eye.png"
    cv2.imwrite(str(frame), eye())
    summary = run_predictions(load_segmenter(stub_models["standard"]), plan_inputs([frame, frame]), tmp_path / "r.jsonl", batch_size=1)
    assert summary.frames == 2 and summary.pupils == 2
    assert set(summary.seconds) == {"read", "preprocess", "inference", "fit", "write"}
    assert all(value > 0 for value in summary.seconds.values())
