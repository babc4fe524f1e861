import pytest
import torch

from visionassist_seg.train.model import Dropout, ShallowNet, count_parameters, dense_cat


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


def test_dense_cat_keeps_channels_last_and_values():
    first = torch.rand(2, 1, 8, 12)
    second = torch.rand(2, 4, 8, 12).contiguous(memory_format=torch.channels_last)
    out = dense_cat(first, second)
    assert torch.equal(out, torch.cat((first, second), dim=1))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    nchw = dense_cat(first, second.contiguous())
    assert nchw.is_contiguous()


def test_channels_last_and_nchw_models_agree():
    torch.manual_seed(0)
    model = ShallowNet().eval()
    x = torch.rand(2, 1, 40, 64) * 255
    with torch.no_grad():
        reference = model(x)
        fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dropout_zeroes_about_p_and_rescales_the_rest(channels_last):
    torch.manual_seed(0)
    x = torch.ones(4, 8, 50, 64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    drop = Dropout(0.2).train()
    out = drop(x)
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert set(out.unique().tolist()) == {0.0, 1.25}
    assert abs((out == 0).float().mean().item() - 0.2) < 0.01
    assert torch.equal(drop.eval()(x), x)


def test_dropout_gradient_follows_its_mask():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    out = Dropout(0.5).train()(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * 2.0)
