import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from seed_model import trained_like

from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.errors import VasegError
from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.train.augment import Sample
from visionassist_seg.train.export import DeviceModel, check_onnx, export_model_file, export_onnx, sample_frames
from visionassist_seg.train.samples import prepare_sample
from visionassist_seg.train.model import ShallowNet
from visionassist_seg.train.weights import read_weights


def balanced(model: ShallowNet) -> ShallowNet:
    """Return ``model`` with the output bias set so about half of a frame's pixels are pupil (a mixed prediction)."""
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(sample_frames(1, seed=7)))
        margin = (logits[:, 1] - logits[:, 0]).median()
        model.out_conv1.bias[1] -= margin
    return model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return balanced(trained_like(ShallowNet(), seed=0))


def demo_prediction(session: ort.InferenceSession, raw: np.ndarray) -> np.ndarray:
    """The live demo's chain (REFERENCE.md section 9), written out: raw gray frame -> (400, 640) mask."""
    table = (255.0 * np.linspace(0, 1, 256) ** 0.8).astype(np.uint8)
    gray = cv2.createCLAHE(clipLimit=1.5, tileGridSize=(8, 8)).apply(cv2.LUT(raw, table))
    x = (gray / 255.0 - 0.5) / 0.5
    tensor = np.zeros((1, 1, 640, 400), np.float32)
    tensor[0, 0] = x.T
    (output,) = session.run(None, {"input": tensor})
    assert output.ndim == 4 and output.shape[1] == 2  # the demo's start-up check
    return output.argmax(axis=1)[0].T


def vaseg_prediction(model: ShallowNet, raw: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Return vaseg's (mask, |logit margin|) for a raw frame, preprocessed as the dataset is."""
    image = torch.from_numpy(enhance_image(raw)[None, None].astype(np.float32))
    with torch.no_grad():
        logits = DeviceModel(model, scale).eval()(image)[0]
    return logits.argmax(0).numpy(), (logits[1] - logits[0]).abs().numpy()


def assert_same_masks(demo: np.ndarray, mask: np.ndarray, margin: np.ndarray, scale: float) -> None:
    # Pixels may differ only where the two classes tie to float32 rounding.
    differ = demo != mask
    assert demo.shape == (400, 640) and 0.05 < mask.mean() < 0.95
    assert np.all(margin[differ] <= 1e-4 * scale), (differ.sum(), margin[differ].max())


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_export_takes_and_returns_full_frames_with_dynamic_batch(model, tmp_path, scale):
    path = tmp_path / "model.onnx"
    export_onnx(model, path, scale=scale)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and inp.shape[1:] == [1, 400, 640] and isinstance(inp.shape[0], str)
    assert out.name == "logits" and out.shape[1:] == [2, 400, 640]
    frames = sample_frames(3, seed=4)
    logits = session.run(["logits"], {"image": frames})[0]
    with torch.no_grad():
        expected = DeviceModel(model, scale).eval()(torch.from_numpy(frames)).numpy()
    assert logits.shape == (3, 2, 400, 640)
    assert np.abs(logits - expected).max() <= 1e-4 * np.abs(expected).max()
    assert not list(tmp_path.glob("*.tmp"))
    # A full-resolution best.onnx is itself a MODEL for `vaseg export`; a scaled one is refused.
    if scale == 1.0:
        loaded = read_weights(path).state
        assert len(loaded) == 118 and all(torch.equal(loaded[k], v) for k, v in model.state_dict().items() if k in loaded)
    else:
        with pytest.raises(VasegError, match="resizes its input bilinearly"):
            read_weights(path)


def test_legacy_export_gives_the_demo_the_upright_prediction(model, tmp_path):
    path = tmp_path / "demo.onnx"
    export_onnx(model, path, layout="legacy")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("input", ["batch_size", 1, 640, 400], "tensor(float)")
    assert (out.name, out.shape) == ("output", ["batch_size", 2, 640, 400])
    raw = make_sample(0, "validation", 5)[0]
    mask, margin = vaseg_prediction(model, raw)
    logit_scale = float(margin.max())
    demo = demo_prediction(session, raw)
    assert_same_masks(demo, mask, margin, logit_scale)
    # The reference's export ran the model on the transposed eye; that gives another mask.
    with torch.no_grad():
        transposed = model(torch.from_numpy(enhance_image(raw).T.copy()[None, None].astype(np.float32)))
    assert (transposed[0].argmax(0).numpy().T != mask).mean() > 0.001


def test_legacy_export_of_a_scaled_checkpoint_resizes_inside(model, tmp_path):
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": model.state_dict(), "epoch": 1, "model_config": {"scale": 0.25}}, checkpoint)
    result = export_model_file(checkpoint, tmp_path / "demo.onnx", layout="legacy")
    assert result.source_kind == "checkpoint" and result.scale == 0.25
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    raw = make_sample(0, "validation", 6)[0]
    mask, margin = vaseg_prediction(model, raw, scale=0.25)
    assert_same_masks(demo_prediction(session, raw), mask, margin, float(margin.max()))


def test_check_onnx_rejects_a_file_that_disagrees_with_the_model(model, tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    torch.manual_seed(1)
    other = ShallowNet().eval()
    with pytest.raises(VasegError, match="differs from the torch model"):
        check_onnx(other, path)
    broken = ShallowNet().eval()
    with torch.no_grad():
        broken.out_conv1.bias.fill_(float("nan"))
    with pytest.raises(VasegError, match="non-finite logits"):
        check_onnx(broken, path)  # torch side: NaN compares False with any limit, so it must be caught first


def test_export_of_a_nan_model_fails_and_leaves_no_file(tmp_path):
    model = ShallowNet().eval()
    with torch.no_grad():
        model.down_block2.bn.running_var.fill_(float("nan"))
    path = tmp_path / "best.onnx"
    with pytest.raises(VasegError, match="non-finite logits .* under onnxruntime"):
        export_onnx(model, path)
    assert list(tmp_path.iterdir()) == []


def test_sample_frames_are_preprocessed_eye_frames():
    frames = sample_frames(2, seed=3)
    assert frames.shape == (2, 1, 400, 640) and frames.dtype == np.float32
    raw = make_sample(3, "validation", 1)[0]
    assert np.array_equal(frames[1, 0], enhance_image(raw).astype(np.float32))


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
