import numpy as np
import pytest
from infer_fixtures import eye

from visionassist_seg.errors import VasegError
from visionassist_seg.infer.models import LEGACY, STANDARD, count_onnx_parameters, load_segmenter


def test_layouts_are_detected_and_agree(stub_models):
    standard, legacy = load_segmenter(stub_models["standard"]), load_segmenter(stub_models["legacy"])
    assert (standard.layout, legacy.layout) == (STANDARD, LEGACY)
    frames = np.stack([eye(seed=0), eye(center=(100, 300), seed=1), eye(pupil=False)])
    a, b = standard.logits(frames), legacy.logits(frames)
    assert a.shape == b.shape == (3, 2, 400, 640)
    np.testing.assert_allclose(a, b, atol=1e-3)  # float32 normalisation round trip only


def test_unexpected_interface_is_one_paragraph(stub_models):
    with pytest.raises(VasegError, match="unexpected interface") as info:
        load_segmenter(stub_models["foreign"])
    assert "foreign.onnx" in info.value.message and "\n" not in info.value.message and "vaseg export" in info.value.message


def test_a_file_that_is_not_onnx_is_named(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(VasegError, match="broken.onnx"):
        load_segmenter(path)


def test_missing_model_and_unknown_suffix(tmp_path):
    with pytest.raises(VasegError, match="does not exist"):
        load_segmenter(tmp_path / "none.onnx")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(VasegError, match="neither an ONNX") as info:
        load_segmenter(tmp_path / "model.bin")
    assert info.value.exit_code == 2


def test_checkpoint_and_its_onnx_agree(trained_run):
    frames = np.stack([eye(seed=2), eye(center=(200, 150), seed=3)])
    torch_logits = load_segmenter(trained_run / "best.pt", device="cpu").logits(frames)
    onnx_logits = load_segmenter(trained_run / "best.onnx").logits(frames)
    assert np.abs(torch_logits - onnx_logits).max() <= 1e-4 * max(1.0, np.abs(torch_logits).max())


def test_onnx_parameter_count_is_shallownets(trained_run):
    assert count_onnx_parameters(trained_run / "best.onnx") == 58_092
