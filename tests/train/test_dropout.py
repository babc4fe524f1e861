"""ShallowNet's Dropout: nn.Dropout's semantics with a cheaper CPU mask (model.Dropout, model.dropout_mask)."""

import math

import pytest
import torch
import torch.nn.functional as F

from visionassist_seg.train import model as model_module
from visionassist_seg.train.model import Dropout, ShallowNet, dropout_mask

N = 4_000_000


def _sigmas(fraction: float, p: float, n: int) -> float:
    return abs(fraction - p) / math.sqrt(p * (1 - p) / n)


# 0.5 and 0.25 end at their first byte (ties are kept); (51 + 1/2) / 256 keeps half the
# ties, so dropping or keeping them all would be off by 1/512: 10 sigmas at N elements.
@pytest.mark.parametrize("p", [0.2, 0.5, 0.25, (51 + 0.5) / 256, 0.01, 0.9, 1 / 3])
def test_fraction_zeroed_is_p(p):
    torch.manual_seed(0)
    y = Dropout(p)(torch.ones(N))
    assert _sigmas((y == 0).double().mean().item(), p, N) < 5


def test_every_byte_of_a_random_word_and_neighbour_pairs_are_unbiased():
    # Eight elements share one 64-bit draw: each byte lane alone must drop p, and two
    # neighbours must drop together p * p of the time (independent).
    p = 0.2
    torch.manual_seed(1)
    dropped = Dropout(p)(torch.ones(N)) == 0
    for lane in range(8):
        assert _sigmas(dropped[lane::8].double().mean().item(), p, N // 8) < 5
    both = (dropped[0::2] & dropped[1::2]).double().mean().item()
    assert _sigmas(both, p * p, N // 2) < 5


@pytest.mark.parametrize("p", [0.2, 0.3])
def test_survivors_are_exactly_x_over_1_minus_p(p):
    torch.manual_seed(0)
    x = torch.rand(100_000) + 0.5
    y = Dropout(p)(x)
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * (1.0 / (1.0 - p)))
    torch.manual_seed(1)
    reference = F.dropout(x, p, training=True)
    both = kept & (reference != 0)
    if p == 0.2:  # 1 / 0.8 is exact in float32: nn.Dropout's survivors are the same numbers
        assert torch.equal(y[both], reference[both])


def test_eval_is_the_identity():
    x = torch.rand(2, 3, 8, 8)
    assert Dropout(0.2).eval()(x) is x


def test_gradient_is_mask_times_scale():
    torch.manual_seed(0)
    x = (torch.rand(4, 8, 16, 16) + 0.5).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = Dropout(0.2)(x)
    upstream = torch.rand_like(y)
    y.backward(upstream)
    mask = (y != 0).float() * 1.25
    assert torch.equal(x.grad, upstream * mask)


def test_same_seed_same_mask_other_seed_other_mask():
    x = torch.ones(3, 32, 20, 20)
    torch.manual_seed(7)
    first = Dropout(0.2)(x)
    torch.manual_seed(7)
    again = Dropout(0.2)(x)
    torch.manual_seed(8)
    other = Dropout(0.2)(x)
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("layout", ["channels_last", "contiguous", "transposed"])
def test_output_has_the_input_layout_and_values(layout):
    x = torch.rand(2, 16, 12, 20) + 0.5
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":
        x = x.transpose(2, 3)
    torch.manual_seed(0)
    y = Dropout(0.2)(x)
    kept = y != 0
    assert y.shape == x.shape and torch.equal(y[kept], x[kept] * 1.25)
    assert 0.1 < 1 - kept.float().mean().item() < 0.3
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


def test_mask_follows_channels_last_memory_order():
    # The same draws fill the same memory: a channels_last mask is the contiguous one permuted.
    x = torch.ones(2, 8, 6, 10)
    torch.manual_seed(3)
    contiguous = dropout_mask(x.permute(0, 2, 3, 1).contiguous(), 0.2)
    torch.manual_seed(3)
    channels_last = dropout_mask(x.contiguous(memory_format=torch.channels_last), 0.2)
    assert torch.equal(channels_last, contiguous.permute(0, 3, 1, 2))


def test_inplace_writes_into_the_input():
    x = torch.ones(1000)
    torch.manual_seed(0)
    y = Dropout(0.2, inplace=True)(x)
    assert y is x and (x == 0).any() and torch.all((x == 0) | (x == 1.25))


@pytest.mark.parametrize(
    "p, dtype", [(0.0, torch.float32), (1.0, torch.float32), (0.2, torch.bfloat16), (0.2, torch.float64)]
)
def test_other_cases_are_nn_dropout_itself(p, dtype):
    # p 0 or 1 and other dtypes (autocast's bfloat16) take nn.Dropout's own forward: same draws.
    x = torch.rand(4, 8, 10, 10).to(dtype) + 0.5
    torch.manual_seed(0)
    ours = Dropout(p)(x)
    torch.manual_seed(0)
    assert torch.equal(ours, F.dropout(x, p, training=True))


def test_compiling_and_tracing_use_nn_dropout(monkeypatch):
    x = torch.rand(4, 8, 10, 10)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.manual_seed(0)
    ours = Dropout(0.2)(x)
    torch.manual_seed(0)
    assert torch.equal(ours, F.dropout(x, 0.2, training=True))
    monkeypatch.undo()
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)
    torch.manual_seed(0)
    ours = Dropout(0.2)(x)
    torch.manual_seed(0)
    assert torch.equal(ours, F.dropout(x, 0.2, training=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_is_nn_dropout_itself():
    x = torch.rand(4, 8, 10, 10, device="cuda")
    torch.manual_seed(0)
    ours = Dropout(0.2)(x)
    torch.manual_seed(0)
    assert torch.equal(ours, F.dropout(x, 0.2, training=True))


def test_shallownet_trains_with_19_dropouts_and_reference_names():
    torch.manual_seed(0)
    model = ShallowNet().to(memory_format=torch.channels_last).train()
    dropouts = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 19 and all(type(model.get_submodule(n)) is model_module.Dropout for n in dropouts)
    assert not any("dropout" in key for key in model.state_dict())
    x = (torch.rand(2, 1, 40, 64) * 255).contiguous(memory_format=torch.channels_last)
    model(x).square().mean().backward()  # in-place LeakyReLU after each dropout: autograd accepts it
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 0, 4, 4), (1, 1, 3, 3)])
def test_small_and_empty_inputs(shape):
    x = torch.ones(shape)
    torch.manual_seed(0)
    y = Dropout(0.5)(x)
    assert y.shape == x.shape and torch.all((y == 0) | (y == 2))
