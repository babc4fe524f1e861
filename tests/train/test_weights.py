import onnx
import pytest
import torch
from seed_model import export_like_seed, old_vaseg_name, trained_like

from visionassist_seg.errors import VasegError
from visionassist_seg.train.model import ShallowNet
from visionassist_seg.train.weights import load_model, load_state, read_weights

# Weights-only checks: the exporter's naming does not depend on the frame size, so the
# reference-style exports here trace a small frame to stay fast.
SMALL = (64, 40)


def _assert_same_weights(model, expected, *, with_counts=True):
    got = model.state_dict()
    for name, tensor in expected.state_dict().items():
        if name.endswith("num_batches_tracked") and not with_counts:
            continue
        assert torch.equal(got[name], tensor), name


@pytest.fixture
def trained():
    torch.manual_seed(3)
    return trained_like(ShallowNet(), seed=3)


def test_plain_state_dict_in_reference_names_loads(tmp_path, trained):
    path = tmp_path / "shallownet.pt"
    torch.save(trained.state_dict(), path)
    model, weights = load_model(path)
    assert weights.kind == "state dict" and weights.scale == 1.0
    _assert_same_weights(model, trained)
    assert not model.training


def test_state_dict_of_a_compiled_model_loads(tmp_path, trained):
    path = tmp_path / "compiled.pt"
    torch.save({f"_orig_mod.{k}": v for k, v in trained.state_dict().items()}, path)
    _assert_same_weights(load_model(path)[0], trained)


def test_vaseg_checkpoint_with_old_key_names_loads_with_its_scale(tmp_path, trained):
    old = {old_vaseg_name(k): v for k, v in trained.state_dict().items()}
    path = tmp_path / "best.pt"
    torch.save({"model": old, "optimizer": {}, "epoch": 4, "model_config": {"dropout": 0.2, "scale": 0.25}}, path)
    model, weights = load_model(path)
    assert weights.kind == "checkpoint" and weights.scale == 0.25
    _assert_same_weights(model, trained)


@pytest.mark.parametrize("fresh", [False, True], ids=["trained", "fresh"])
def test_reference_onnx_export_loads_with_batchnorm_statistics(tmp_path, trained, fresh):
    # A fresh model's biases and BatchNorm statistics are all zeros or ones: the exporter
    # then merges equal initializers and keeps the other names only as Identity outputs.
    source = ShallowNet() if fresh else trained
    path = export_like_seed(source, tmp_path / "seed.onnx", SMALL)
    initializers = {i.name for i in onnx.load(str(path)).graph.initializer}
    assert ("down_block2.bn.running_mean" not in initializers) == fresh
    model, weights = load_model(path)
    assert weights.kind == "onnx" and len(weights.state) == 118
    _assert_same_weights(model, source, with_counts=False)
    assert torch.equal(model.down_block3.bn.running_var, source.down_block3.bn.running_var)


def test_onnx_weights_give_the_same_predictions(tmp_path, trained):
    path = export_like_seed(trained, tmp_path / "seed.onnx", SMALL)
    model, _ = load_model(path)
    x = torch.rand(2, 1, 48, 80) * 255
    with torch.no_grad():
        assert torch.equal(model(x), trained.eval()(x))


def test_mismatched_state_dict_names_the_file_and_keys(tmp_path, trained):
    state = trained.state_dict()
    del state["up_block2.conv21.weight"]
    state["head.weight"] = torch.zeros(3)
    state["out_conv1.weight"] = torch.zeros(4, 32, 1, 1)
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(VasegError) as err:
        load_model(path)
    message = err.value.message
    assert str(path) in message and "missing up_block2.conv21.weight" in message
    assert "unexpected head.weight" in message and "wrong shape out_conv1.weight (4, 32, 1, 1)" in message


def test_long_key_lists_are_shortened(tmp_path):
    path = tmp_path / "empty_model.pt"
    with pytest.raises(VasegError, match=r"and \d+ more"):
        load_state(ShallowNet(), {"x": torch.zeros(1)}, path)


def test_checkpoint_dict_without_model_is_a_message_not_a_key_error(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"optimizer": {}, "epoch": 3}, path)
    with pytest.raises(VasegError, match=r"holds no ShallowNet weights \(found: optimizer, epoch\)"):
        read_weights(path)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04broken zip"])
def test_unreadable_files_are_one_message(tmp_path, content):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(VasegError, match="Cannot read"):
        read_weights(path)


def test_missing_file_is_a_message(tmp_path):
    with pytest.raises(VasegError, match="does not exist"):
        read_weights(tmp_path / "nope.pt")


def test_onnx_of_another_model_is_a_message(tmp_path):
    path = tmp_path / "other.onnx"
    torch.onnx.export(torch.nn.Conv2d(1, 1, 1), torch.zeros(1, 1, 8, 8), str(path), dynamo=False)
    with pytest.raises(VasegError, match="has 1 Conv and 0 BatchNormalization, in an order that is not ShallowNet's"):
        read_weights(path)


def test_onnx_with_dropped_zero_biases_loads(tmp_path):
    # torch's dynamo exporter (with onnxscript) removes all-zero conv biases from the graph.
    source = ShallowNet()
    path = export_like_seed(source, tmp_path / "seed.onnx", SMALL)
    proto = onnx.load(str(path))
    zero = {i.name for i in proto.graph.initializer if not onnx.numpy_helper.to_array(i).any()}
    dropped = 0
    for node in proto.graph.node:
        if node.op_type == "Conv" and len(node.input) == 3:
            del node.input[2]
            dropped += 1
    assert dropped == 51 and zero
    onnx.save(proto, str(path))
    _assert_same_weights(load_model(path)[0], source, with_counts=False)


def test_onnx_nodes_out_of_order_are_refused(tmp_path, trained):
    path = export_like_seed(trained, tmp_path / "seed.onnx", SMALL)
    proto = onnx.load(str(path))
    first, second = [n for n in proto.graph.node if n.op_type == "Conv"][:2]
    first.input[1], second.input[1] = second.input[1], first.input[1]
    onnx.save(proto, str(path))
    with pytest.raises(VasegError, match="not in ShallowNet's order"):
        read_weights(path)


def test_onnx_of_a_scaled_vaseg_export_asks_for_the_checkpoint(tmp_path):
    from visionassist_seg.train.export import DeviceModel

    path = tmp_path / "best.onnx"
    torch.onnx.export(DeviceModel(ShallowNet().eval(), 0.1), torch.zeros(1, 1, 400, 640), str(path), dynamo=False)
    with pytest.raises(VasegError, match="resizes its input bilinearly: .* Pass that run's best.pt"):
        read_weights(path)


def test_load_state_maps_old_vaseg_names_for_resume(tmp_path, trained):
    # --resume of a last.pt written before the reference names goes through load_state.
    model = ShallowNet()
    load_state(model, {old_vaseg_name(k): v for k, v in trained.state_dict().items()}, tmp_path / "last.pt")
    _assert_same_weights(model, trained)
