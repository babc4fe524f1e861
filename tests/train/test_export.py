import numpy as np
import onnxruntime as ort
import pytest
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.train.export import DeviceModel, check_onnx, export_onnx
from visionassist_seg.train.loader import prepare_sample
from visionassist_seg.train.augment import Sample
from visionassist_seg.train.model import ShallowNet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ShallowNet().eval()


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_export_takes_and_returns_full_frames_with_dynamic_batch(model, tmp_path, scale):
    path = tmp_path / "model.onnx"
    difference = export_onnx(model, path, scale=scale)
    assert path.is_file() and difference <= 1e-4 * 300
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.shape[1:] == [1, 400, 640] and isinstance(inp.shape[0], str)
    assert out.name == "logits" and out.shape[1:] == [2, 400, 640]
    frames = np.random.default_rng(1).uniform(0, 255, (3, 1, 400, 640)).astype(np.float32)
    assert session.run(["logits"], {"image": frames})[0].shape == (3, 2, 400, 640)


def test_check_onnx_rejects_a_file_that_disagrees_with_the_model(model, tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    torch.manual_seed(1)
    other = ShallowNet().eval()
    with pytest.raises(VasegError, match="differs from the torch model"):
        check_onnx(other, path)


def test_device_model_resizes_like_the_training_loader():
    # The ONNX model's input resize must match the loader's cv2 resize, or a scaled model
    # would see different pixels on the device than in training.
    image = np.random.default_rng(0).integers(0, 256, (400, 640), dtype=np.uint8)
    zeros = np.zeros((400, 640), np.float32)
    loader_small = prepare_sample(Sample(image, image, zeros, np.stack([zeros, zeros])), False, (100, 160)).image
    torch_small = torch.nn.functional.interpolate(
        torch.from_numpy(image)[None, None].float(), size=(100, 160), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    assert np.abs(loader_small.astype(np.float32) - torch_small).max() <= 1.0
    wrapped = DeviceModel(torch.nn.Identity(), 0.25)
    assert wrapped(torch.zeros(1, 2, 400, 640)).shape == (1, 2, 400, 640)
