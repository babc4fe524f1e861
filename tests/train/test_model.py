import pytest
import torch

from visionassist_seg.train.model import ShallowNet, count_parameters


def test_shallownet_parameter_count_at_defaults():
    assert count_parameters(ShallowNet()) == 58_092


def test_shallownet_full_frame_output_shape():
    model = ShallowNet().eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 1, 400, 640))
    assert logits.shape == (1, 2, 400, 640)


@pytest.mark.parametrize("height, width", [(37, 61), (100, 160), (8, 8), (50, 83)])
def test_shallownet_any_size_is_padded_and_cropped_back(height, width):
    model = ShallowNet().eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 1, height, width) * 255)
    assert logits.shape == (2, 2, height, width)


def test_shallownet_init_follows_ritnet():
    model = ShallowNet()
    depthwise = model.down2.conv1[0]
    assert depthwise.groups == 32
    # n = 3*3 for a depthwise conv: std sqrt(2/9) ~ 0.47
    assert 0.35 < depthwise.weight.std().item() < 0.6
    assert torch.all(depthwise.bias == 0)
    assert torch.all(model.down1.bn.weight == 1) and torch.all(model.down1.bn.bias == 0)


def test_shallownet_is_deterministic_in_eval_and_dropout_active_in_train():
    torch.manual_seed(0)
    model = ShallowNet()
    x = torch.rand(1, 1, 16, 16) * 255
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
