import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import infer_fixtures as fx
import pytest
from cli_helpers import output_text, runner

from visionassist_seg.cli.app import app


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict-models")
    return {
        "standard": fx.export(fx.DarkIsPupil(), root / "dark.onnx"),
        "legacy": fx.export(fx.LegacyLayout(fx.DarkIsPupil()), root / "dark-legacy.onnx", legacy=True),
        "foreign": fx.export(fx.DarkIsPupil(), root / "foreign.onnx", input_shape=(1, 3, 224, 224), names=("x", "y")),
    }


def _predict(model: Path, *args) -> tuple:
    result = runner.invoke(app, ["predict", str(model), *map(str, args)])
    return result, output_text(result)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def test_grey_and_colour_images(models, tmp_path):
    grey = _png(tmp_path / "grey.png", fx.eye(center=(300.0, 180.0)))
    colour = _png(tmp_path / "colour.png", cv2.cvtColor(fx.eye(center=(300.0, 180.0)), cv2.COLOR_GRAY2BGR))
    result, _ = _predict(models["standard"], grey, colour, "--output", tmp_path / "rows.jsonl")
    assert result.exit_code == 0, result.output
    rows = _jsonl(tmp_path / "rows.jsonl")
    assert [(r["source"], r["frame"], r["pupil"]) for r in rows] == [(str(grey), 0, True), (str(colour), 0, True)]
    assert rows[0]["center_x"] == pytest.approx(300, abs=0.5) and rows[0]["center_y"] == pytest.approx(180, abs=0.5)
    assert rows[0]["axes"][0] == pytest.approx(59, abs=2) and 0 <= rows[0]["angle"] < 180
    assert rows[0]["area"] == pytest.approx(np.pi * 30**2, rel=0.03) and rows[0]["confidence"] > 0.99
    assert {k: v for k, v in rows[0].items() if k != "source"} == {k: v for k, v in rows[1].items() if k != "source"}


def test_legacy_layout_gives_the_same_rows(models, tmp_path):
    image = _png(tmp_path / "eye.jpg", fx.eye(center=(250.0, 220.0)))
    for name in ("standard", "legacy"):
        result, _ = _predict(models[name], image, "--output", tmp_path / f"{name}.jsonl")
        assert result.exit_code == 0, result.output
    standard, legacy = _jsonl(tmp_path / "standard.jsonl"), _jsonl(tmp_path / "legacy.jsonl")
    assert standard[0]["center_x"] == pytest.approx(legacy[0]["center_x"], abs=0.05)
    assert standard[0]["area"] == pytest.approx(legacy[0]["area"], rel=0.01)


def test_folder_is_searched_and_sorted(models, tmp_path):
    folder = tmp_path / "frames"
    (folder / "sub").mkdir(parents=True)
    _png(folder / "b.bmp", fx.eye())
    _png(folder / "sub" / "a.png", fx.eye())
    (folder / "notes.txt").write_text("not an image")
    result, _ = _predict(models["standard"], folder, "--output", tmp_path / "rows.jsonl", "--overlay", tmp_path / "over")
    assert result.exit_code == 0, result.output
    assert [r["source"] for r in _jsonl(tmp_path / "rows.jsonl")] == [str(folder / "b.bmp"), str(folder / "sub" / "a.png")]
    assert sorted(p.name for p in (tmp_path / "over").iterdir()) == ["a.png", "b.png"]
    assert cv2.imread(str(tmp_path / "over" / "a.png")).shape == (400, 640, 3)


def test_video_rows_count_and_index_every_frame(models, tmp_path):
    frames = [fx.eye(center=(200.0 + 20 * i, 200.0), seed=i) for i in range(5)]
    video = fx.write_video(tmp_path / "clip.avi", frames, fps=12)
    result, _ = _predict(
        models["standard"], video, "--output", tmp_path / "rows.csv", "--overlay", tmp_path / "over.mp4", "--batch-size", "2"
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "rows.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3, 4] and all(r["source"] == str(video) for r in rows)
    assert [round(float(r["center_x"])) for r in rows] == [200, 220, 240, 260, 280]
    assert len(json.loads(rows[0]["axes"])) == 2
    capture = cv2.VideoCapture(str(tmp_path / "over.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 5 and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12)
    capture.release()


def test_frames_of_another_size_are_mapped_back_and_noted_once(models, tmp_path):
    first = _png(tmp_path / "square.png", fx.eye(480, 480, center=(300.0, 200.0), radius=36))
    second = _png(tmp_path / "small.png", fx.eye(200, 320, center=(100.0, 60.0), radius=15))
    result, text = _predict(models["standard"], first, second, "--output", tmp_path / "rows.jsonl", "--overlay", tmp_path / "o")
    assert result.exit_code == 0, result.output
    a, b = _jsonl(tmp_path / "rows.jsonl")
    assert (a["center_x"], a["center_y"]) == pytest.approx((300, 200), abs=1.0)
    assert (b["center_x"], b["center_y"]) == pytest.approx((100, 60), abs=1.0)
    assert a["area"] == pytest.approx(np.pi * 36**2, rel=0.05) and b["axes"][0] == pytest.approx(29, abs=2)
    assert text.count("resized keeping their aspect ratio") == 1
    assert cv2.imread(str(tmp_path / "o" / "square.png")).shape == (480, 480, 3)


def test_no_pupil_rows_have_null_geometry(models, tmp_path):
    image = _png(tmp_path / "closed.png", fx.eye(pupil=False))
    result, _ = _predict(models["standard"], image, "--output", tmp_path / "rows.csv")
    assert result.exit_code == 0, result.output
    with (tmp_path / "rows.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert row["pupil"] == "False" and row["center_x"] == row["axes"] == row["angle"] == row["area"] == row["confidence"] == ""


def test_preprocessed_frames_skip_gamma_and_clahe(models, tmp_path):
    frame = np.full((400, 640), 70, np.uint8)  # taken as it is: only the 50-grey square is below the stub threshold (60)
    frame[100:140, 100:140] = 50
    image = _png(tmp_path / "pre.png", frame)
    result, _ = _predict(models["standard"], image, "--preprocessed", "--output", tmp_path / "rows.jsonl")
    assert result.exit_code == 0, result.output
    (row,) = _jsonl(tmp_path / "rows.jsonl")
    assert row["area"] == 1600 and row["center_x"] == pytest.approx(119.5, abs=0.01)


def test_bad_inputs_are_named_and_the_others_go_on(models, tmp_path):
    good = _png(tmp_path / "good.png", fx.eye())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"not a video at all")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing.png"
    result, text = _predict(models["standard"], broken, bad_video, missing, empty, good, "--output", tmp_path / "rows.jsonl")
    assert result.exit_code == 1
    assert [r["source"] for r in _jsonl(tmp_path / "rows.jsonl")] == [str(good)]
    assert "broken.png cannot be decoded" in text and "bad.mp4 will not open" in text
    assert "missing.png does not exist" in text and "holds no images" in text
    assert "4 input(s) could not be read" in text and "Traceback" not in result.output


def test_a_model_with_an_unexpected_interface(models, tmp_path):
    result, text = _predict(models["foreign"], _png(tmp_path / "a.png", fx.eye()), "--output", tmp_path / "rows.jsonl")
    assert result.exit_code == 1 and "unexpected interface" in text and "foreign.onnx" in text


def test_output_must_be_jsonl_or_csv(models, tmp_path):
    result, text = _predict(models["standard"], tmp_path, "--output", tmp_path / "rows.txt")
    assert result.exit_code == 2 and ".jsonl or .csv" in text


def test_onnx_prediction_does_not_import_torch(models, tmp_path):
    image = _png(tmp_path / "eye.png", fx.eye())
    args = ["predict", str(models["standard"]), str(image), "--output", str(tmp_path / "r.jsonl")]
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from visionassist_seg.cli.app import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:3]\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert len(_jsonl(tmp_path / "r.jsonl")) == 1
