import pytest
import torch

from seed_model import old_vaseg_name, reference_state_dict_names

from visionassist_seg.train.model import Dropout, ShallowNet, count_parameters, dense_cat, reference_key


def test_shallownet_parameter_count_at_defaults():
    assert count_parameters(ShallowNet()) == 58_092


def test_shallownet_has_the_reference_19_dropout_layers():
    # 3 per down block (4 blocks), 2 per up block (3 blocks), 1 before the output conv.
    model = ShallowNet(dropout=0.2)
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 4 * 3 + 3 * 2 + 1 == 19
    # model.Dropout: an nn.Dropout with a cheaper CPU mask, no parameters of its own.
    assert all(type(m) is Dropout and m.p == 0.2 for m in dropouts)


def test_state_dict_names_are_the_reference_names_in_order():
    names = reference_state_dict_names()
    assert len(names) == 122
    assert list(ShallowNet().state_dict()) == names


@pytest.mark.parametrize(
    "old, new",
    [
        ("down1.conv1.0.weight", "down_block1.depthwise_conv1.weight"),
        ("down4.conv32.1.bias", "down_block4.pointwise_conv32.bias"),
        ("down2.conv31.weight", "down_block2.conv31.weight"),
        ("down3.bn.num_batches_tracked", "down_block3.bn.num_batches_tracked"),
        ("up2.conv12.0.weight", "up_block2.depthwise_conv12.weight"),
        ("up3.conv11.bias", "up_block3.conv11.bias"),
        ("out_conv.weight", "out_conv1.weight"),
        ("_orig_mod.down1.bn.running_var", "down_block1.bn.running_var"),
        ("module.up_block1.conv21.weight", "up_block1.conv21.weight"),
        ("up_block1.depthwise_conv22.bias", "up_block1.depthwise_conv22.bias"),
    ],
)
def test_reference_key_maps_old_and_wrapped_names(old, new):
    assert reference_key(old) == new


def test_every_old_vaseg_key_maps_to_its_reference_key():
    names = reference_state_dict_names()
    assert [reference_key(old_vaseg_name(n)) for n in names] == names
    assert len({old_vaseg_name(n) for n in names}) == 122


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
    depthwise = model.down_block2.depthwise_conv1
    assert depthwise.groups == 32
    # n = 3*3 for a depthwise conv: std sqrt(2/9) ~ 0.47
    assert 0.35 < depthwise.weight.std().item() < 0.6
    assert torch.all(depthwise.bias == 0)
    assert torch.all(model.down_block1.bn.weight == 1) and torch.all(model.down_block1.bn.bias == 0)


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


def test_output_dropout_acts_before_the_output_conv():
    # With every other dropout off, the last one alone must still make training passes differ.
    torch.manual_seed(0)
    model = ShallowNet(dropout=0.0).train()
    model.dropout1.p = 0.5
    x = torch.rand(1, 1, 16, 16) * 255
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))
        model.dropout1.p = 0.0
        assert torch.equal(model(x), model(x))


def test_dense_cat_keeps_channels_last_and_values():
    first = torch.rand(2, 1, 8, 12)
    second = torch.rand(2, 4, 8, 12).contiguous(memory_format=torch.channels_last)
    out = dense_cat(first, second)
    assert torch.equal(out, torch.cat((first, second), dim=1))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    nchw = dense_cat(first, second.contiguous())
    assert nchw.is_contiguous()


def test_channels_last_and_nchw_models_agree():
    # Both layouts are float32 sums of the same products in different orders; through about
    # 30 convolutions the rounding grows to about 1e-6 of the largest logit (random-init
    # logits reach about 2,000 here). Allow 1e-5 of the output's scale: far below any
    # real layout error (wrong strides mix channels, an error of the order of the logits).
    torch.manual_seed(0)
    model = ShallowNet().eval()
    x = torch.rand(2, 1, 40, 64) * 255
    with torch.no_grad():
        reference = model(x)
        fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    scale = reference.abs().max().item()
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5 * scale)
