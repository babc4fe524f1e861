import numpy as np
import pytest
import torch

from visionassist_seg.train.metrics import IoUAccumulator
from visionassist_seg.train.scores import IoUSums, challenge_score, model_size_mb


def test_iou_sums_intersections_and_unions_over_batches():
    acc = IoUAccumulator(2)
    # batch 1: pupil pred {0,1}, true {1}: I=1, U=2 ; background pred {2,3}, true {0,2,3}: I=2, U=3
    acc.update(torch.tensor([[1, 1, 0, 0]]), torch.tensor([[0, 1, 0, 0]]))
    # batch 2: pupil pred {}, true {0}: I=0, U=1 ; background pred all 4, true {1,2,3}: I=3, U=4
    acc.update(torch.tensor([[0, 0, 0, 0]]), torch.tensor([[1, 0, 0, 0]]))
    background, pupil = acc.per_class()
    assert pupil == pytest.approx(1 / 3)  # (1 + 0) / (2 + 1), not the mean of 1/2 and 0
    assert background == pytest.approx(5 / 7)
    assert acc.mean() == pytest.approx((1 / 3 + 5 / 7) / 2)


def test_iou_of_a_class_absent_everywhere_is_one():
    acc = IoUAccumulator(2)
    acc.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    assert acc.per_class() == [1.0, 1.0]


def test_numpy_sums_equal_the_torch_accumulator():
    rng = np.random.default_rng(3)
    torch_acc, numpy_acc = IoUAccumulator(2), IoUSums(2)
    for _ in range(3):
        prediction = rng.random((2, 40, 64)) < 0.3  # bool, as `pupil_mask` returns
        target = (rng.random((2, 40, 64)) < 0.2).astype(np.uint8)
        torch_acc.update(torch.from_numpy(prediction), torch.from_numpy(target))
        numpy_acc.update(prediction, target)
    assert numpy_acc.per_class() == torch_acc.per_class()
    assert numpy_acc.intersection.tolist() == torch_acc.intersection.tolist()
    assert numpy_acc.union.tolist() == torch_acc.union.tolist()
    assert 0 < numpy_acc.mean() < 1


def test_challenge_score_of_shallownet():
    assert model_size_mb(58_092) == pytest.approx(58_092 * 4 / 2**20)
    assert challenge_score(0.9, 58_092) == pytest.approx(0.5 * (1 + 0.9))
    # a 4 MB model scores 1/4 for size
    assert challenge_score(0.9, 2**20) == pytest.approx(0.5 * (0.25 + 0.9))
