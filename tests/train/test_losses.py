import math

import pytest
import torch

from visionassist_seg.train.losses import (
    alpha_at,
    combined_loss,
    generalised_dice_loss,
    surface_loss,
    weighted_cross_entropy,
)


def test_weighted_cross_entropy_is_per_pixel_times_one_plus_weight():
    logits = torch.zeros(1, 2, 1, 2)  # softmax 0.5 everywhere: CE = ln 2 per pixel
    target = torch.tensor([[[0, 1]]])
    weights = torch.tensor([[[0.0, 20.0]]])
    # (ln2 * 1 + ln2 * 21) / 2
    assert weighted_cross_entropy(logits, target, weights).item() == pytest.approx(11 * math.log(2), rel=1e-6)


def test_weighted_cross_entropy_weights_act_per_pixel_not_as_a_scalar():
    logits = torch.tensor([[[[4.0, 0.0]], [[0.0, 0.0]]]])  # pixel 0 confident class 0, pixel 1 unsure
    target = torch.tensor([[[0, 1]]])
    ce0 = math.log(1 + math.exp(-4.0))
    ce1 = math.log(2)
    weighted = weighted_cross_entropy(logits, target, torch.tensor([[[20.0, 0.0]]])).item()
    assert weighted == pytest.approx((21 * ce0 + ce1) / 2, rel=1e-6)


def test_generalised_dice_two_pixels_hand_computed():
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    # weights 1 and 1; intersections 0.5 + 0.5; denominators 2 + 2: dice 0.5
    assert generalised_dice_loss(logits, target).item() == pytest.approx(0.5, rel=1e-6)


def test_generalised_dice_three_pixels_class_weighted():
    logits = torch.zeros(1, 2, 1, 3)
    target = torch.tensor([[[0, 0, 1]]])
    # w0 = 1/4, w1 = 1; A = 0.25*1 + 1*0.5 = 0.75; B = 0.25*3.5 + 1*2.5 = 3.375
    expected = 1 - 2 * 0.75 / 3.375
    assert generalised_dice_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_generalised_dice_perfect_prediction_is_near_zero_and_batch_is_averaged():
    target = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.stack([(target == 0).float(), (target == 1).float()], dim=1) * 50
    assert generalised_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    both = generalised_dice_loss(torch.cat([logits, torch.zeros_like(logits)]), torch.cat([target, target]))
    assert both.item() == pytest.approx(generalised_dice_loss(torch.zeros_like(logits), target).item() / 2, rel=1e-6)


def test_surface_loss_is_mean_of_softmax_times_distance():
    logits = torch.zeros(1, 2, 1, 2)
    dist = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.0]]]])
    assert surface_loss(logits, dist).item() == pytest.approx(0.5 * (1 - 2 + 3 + 0) / 4, rel=1e-6)


@pytest.mark.parametrize(
    "epoch, epochs, expected",
    [(0, 15, 1 - 1 / 15), (7, 15, 1 - 8 / 15), (14, 15, 0.0), (0, 200, 1 - 1 / 125), (124, 200, 0.0), (125, 200, 1.0), (199, 200, 1.0)],
)
def test_alpha_schedule(epoch, epochs, expected):
    assert alpha_at(epoch, epochs) == pytest.approx(expected)


def test_combined_loss_mixes_terms_with_alpha():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 2, (2, 4, 4))
    weights = torch.rand(2, 4, 4) * 20
    dist = torch.randn(2, 2, 4, 4)
    ce = weighted_cross_entropy(logits, target, weights)
    gdl = generalised_dice_loss(logits, target)
    sl = surface_loss(logits, dist)
    assert combined_loss(logits, target, weights, dist, 0.3).item() == pytest.approx((ce + 0.3 * gdl + 0.7 * sl).item(), rel=1e-6)


def test_losses_compute_in_float32_for_half_logits():
    logits = torch.zeros(1, 2, 2, 2, dtype=torch.bfloat16)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    loss = combined_loss(logits, target, torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, 2), 0.5)
    assert loss.dtype == torch.float32
