"""The ShallowNet training loss: weighted cross-entropy, generalised Dice and surface loss.

Pure functions (REFERENCE.md section 4); the training loop calls `combined_loss` with
the epoch's `alpha_at`. Every function computes in float32 whatever the logits' dtype,
so mixed precision cannot underflow the Dice sums.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DICE_EPSILON = 1e-5
ALPHA_EPOCHS = 125


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, spatial_weights: torch.Tensor) -> torch.Tensor:
    """Return the mean over pixels of ``CE(pixel) * (1 + spatial_weights(pixel))``.

    The per-pixel product is the intended form; RITnet multiplied a scalar CE by the
    weights, which cancels their effect.

    Shape:
        logits: (N, C, H, W); target: (N, H, W) integer class; spatial_weights: (N, H, W) -> scalar
    """
    per_pixel = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return (per_pixel * (1.0 + spatial_weights.float())).mean()


def generalised_dice_loss(logits: torch.Tensor, target: torch.Tensor, epsilon: float = DICE_EPSILON) -> torch.Tensor:
    """Return ``mean_n(1 - clamp(dice_n, epsilon))`` with class weights ``1 / clamp((sum target_c)^2, epsilon)``.

    ``dice_n = 2 * sum_c(w_c * sum(p_c * t_c)) / sum_c(w_c * sum(p_c + t_c))`` per sample,
    with p the softmax and t the one-hot target.

    Shape:
        logits: (N, C, H, W); target: (N, H, W) integer class -> scalar
    """
    num_classes = logits.shape[1]
    probs = torch.softmax(logits.float(), dim=1).flatten(2)
    one_hot = F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).flatten(2).float()
    class_weights = 1.0 / torch.clamp(one_hot.sum(dim=2) ** 2, min=epsilon)
    intersection = (class_weights * (probs * one_hot).sum(dim=2)).sum(dim=1)
    total = (class_weights * (probs + one_hot).sum(dim=2)).sum(dim=1)
    dice = 2.0 * intersection / total
    return (1.0 - dice.clamp(min=epsilon)).mean()


def surface_loss(logits: torch.Tensor, dist_map: torch.Tensor) -> torch.Tensor:
    """Return ``mean(softmax(logits) * dist_map)`` over samples, classes and pixels.

    Shape:
        logits: (N, C, H, W); dist_map: (N, C, H, W) -> scalar
    """
    return (torch.softmax(logits.float(), dim=1) * dist_map.float()).mean()


def alpha_at(epoch: int, epochs: int, ramp_epochs: int = ALPHA_EPOCHS) -> float:
    """Return the Dice/surface mixing weight ``a`` for 0-based ``epoch`` of ``epochs``.

    ``a = 1 - (epoch + 1) / min(ramp_epochs, epochs)`` while ``epoch < min(ramp_epochs, epochs)``,
    1 afterwards: the loss moves from Dice towards the surface loss over the run.
    """
    ramp = min(ramp_epochs, epochs)
    if epoch < ramp:
        return 1.0 - (epoch + 1) / ramp
    return 1.0


def combined_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    spatial_weights: torch.Tensor,
    dist_map: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """Return ``CE_w + alpha * GDL + (1 - alpha) * SL``.

    Shape:
        logits: (N, C, H, W); target: (N, H, W); spatial_weights: (N, H, W); dist_map: (N, C, H, W) -> scalar
    """
    return (
        weighted_cross_entropy(logits, target, spatial_weights)
        + alpha * generalised_dice_loss(logits, target)
        + (1.0 - alpha) * surface_loss(logits, dist_map)
    )

