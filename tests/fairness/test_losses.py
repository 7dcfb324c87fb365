import pickle

import numpy as np
import pytest
import torch
from _helpers import build_cell_spec

from skforml.fairness._objectives import (
    cross_entropy,
    make_meta_loss,
    max_loss_discrepancy,
    mean_loss_discrepancy,
)


def _masks(bucket_of_cell):
    buckets = torch.as_tensor(bucket_of_cell)
    return [buckets == b for b in range(int(buckets.max()) + 1)]


# ---------------------------------------------------------------- meta-losses


def test_one_bucket_hand_computed():
    # cell 0: losses 1, 3 (mean 2); cell 1: loss 6; an ignored row of loss 100.
    losses = torch.tensor([1.0, 6.0, 100.0, 3.0])
    cells = torch.tensor([0, 1, -1, 0])
    masks = _masks([0, 0])
    # L_bar pools the rows: (1 + 3 + 6) / 3 = 10/3, not the mean of the means
    # (4). |2 - 10/3| = 4/3, |6 - 10/3| = 8/3, mean 2.
    assert mean_loss_discrepancy(losses, cells, masks).item() == pytest.approx(2.0)
    assert max_loss_discrepancy(losses, cells, masks).item() == pytest.approx(4.0)


def test_buckets_hand_computed():
    # Equalized odds on 2 groups x 2 labels: cell = 2 * group + label, bucket =
    # label. Label 0: cells 0 (losses 1, 1) and 2 (loss 3). Label 1: cells 1
    # (loss 4) and 3 (losses 2, 6: mean 4).
    losses = torch.tensor([1.0, 4.0, 1.0, 3.0, 2.0, 6.0])
    cells = torch.tensor([0, 1, 0, 2, 3, 3])
    masks = _masks([0, 1, 0, 1])
    # Bucket 0: L_bar = 5/3, |1 - 5/3| = 2/3, |3 - 5/3| = 4/3 -> mean 1.
    # Bucket 1: L_bar = 12/3 = 4, both groups at 4 -> 0. Mean over buckets 0.5.
    assert mean_loss_discrepancy(losses, cells, masks).item() == pytest.approx(0.5)
    # Max: bucket 0: 3 - 1 = 2; bucket 1: 0. Mean 1.
    assert max_loss_discrepancy(losses, cells, masks).item() == pytest.approx(1.0)


def test_empty_cell_is_left_out():
    # Three cells in one bucket, cell 2 has no row in this batch.
    losses = torch.tensor([2.0, 4.0])
    cells = torch.tensor([0, 1])
    masks = _masks([0, 0, 0])
    # With the empty cell counted as a 0 loss the answers would be 5/3 and 4.
    assert mean_loss_discrepancy(losses, cells, masks).item() == pytest.approx(1.0)
    assert max_loss_discrepancy(losses, cells, masks).item() == pytest.approx(2.0)


def test_worst_group_lift_hand_computed():
    # cell 0: losses 1, 3 (mean 2); cell 1: loss 6; L_bar = 10/3.
    losses = torch.tensor([1.0, 3.0, 6.0])
    cells = torch.tensor([0, 0, 1])
    masks = _masks([0, 0])
    # Mean: 2 + lift * mean(relu(2 - 10/3), relu(6 - 10/3)) = 2 + lift * 4/3.
    mean_d = mean_loss_discrepancy(losses, cells, masks, worst_group_lift=0.5)
    assert mean_d.item() == pytest.approx(2 + 0.5 * 4 / 3)
    # Max: (6 - 2) + lift * (6 - 2).
    max_d = max_loss_discrepancy(losses, cells, masks, worst_group_lift=0.5)
    assert max_d.item() == pytest.approx(4 + 0.5 * 4)
    # lift=0 is the paper's definition.
    plain = mean_loss_discrepancy(losses, cells, masks, worst_group_lift=0.0)
    assert plain.item() == pytest.approx(2.0)


def test_worst_group_lift_only_pushes_the_worst_group_down():
    # Rows a, b in cell 0 (the better group), c in cell 1 (the worse one).
    cells = torch.tensor([0, 0, 1])
    masks = _masks([0, 0])
    losses = torch.tensor([1.0, 3.0, 6.0], requires_grad=True)
    mean_loss_discrepancy(losses, cells, masks).backward()
    # 0.5 * (L_1 - L_0): the better group is pushed up as much as the worse
    # one is pushed down.
    np.testing.assert_allclose(losses.grad.numpy(), [-0.25, -0.25, 0.5])
    losses.grad = None
    mean_loss_discrepancy(losses, cells, masks, worst_group_lift=1.0).backward()
    # The lift adds d/dc of 0.5 * relu(c - sg(L_bar)) = 0.5 on c alone.
    np.testing.assert_allclose(losses.grad.numpy(), [-0.25, -0.25, 1.0])
    losses.grad = None
    max_loss_discrepancy(losses, cells, masks, worst_group_lift=1.0).backward()
    np.testing.assert_allclose(losses.grad.numpy(), [-0.5, -0.5, 2.0])


def test_meta_losses_are_zero_when_groups_are_equal():
    losses = torch.tensor([1.0, 3.0, 2.0, 2.0])
    cells = torch.tensor([0, 0, 1, 1])
    masks = _masks([0, 0])
    assert mean_loss_discrepancy(losses, cells, masks).item() == 0.0
    assert max_loss_discrepancy(losses, cells, masks).item() == 0.0


def test_meta_loss_gradient_hand_computed():
    # cell 0: rows a, b; cell 1: row c. Max loss D = c - (a + b) / 2.
    losses = torch.tensor([1.0, 3.0, 6.0], requires_grad=True)
    cells = torch.tensor([0, 0, 1])
    max_loss_discrepancy(losses, cells, _masks([0, 0])).backward()
    np.testing.assert_allclose(losses.grad.numpy(), [-0.5, -0.5, 1.0])


def test_cross_entropy_meta_loss_is_plain_mean():
    losses = torch.tensor([1.0, 2.0, 6.0])
    assert cross_entropy(losses, torch.tensor([0, -1, 1])).item() == pytest.approx(3)


def test_make_meta_loss():
    spec = build_cell_spec(
        "equalized_odds",
        group_names=["a", "b"],
        class_names=[0, 1],
        groups_are_classes=False,
        present=np.ones(4, dtype=bool),
    )
    losses = torch.tensor([1.0, 4.0, 1.0, 3.0, 2.0, 6.0])
    cells = torch.tensor([0, 1, 0, 2, 3, 3])
    mean_d = make_meta_loss("mean_loss_discrepancy", spec, torch.device("cpu"))
    max_d = make_meta_loss("max_loss_discrepancy", spec, torch.device("cpu"))
    assert mean_d(losses, cells).item() == pytest.approx(0.5)
    assert max_d(losses, cells).item() == pytest.approx(1.0)
    assert make_meta_loss("cross_entropy", spec, "cpu") is cross_entropy
    lifted = make_meta_loss(
        "max_loss_discrepancy", spec, torch.device("cpu"), worst_group_lift=2.0
    )
    # Bucket 0: 2 + 2 * 2; bucket 1: 0. Mean 3.
    assert lifted(losses, cells).item() == pytest.approx(3.0)

    def custom(losses, cells):
        return losses.sum()

    assert make_meta_loss(custom, spec, "cpu") is custom
    # Built-in meta-losses are pickled with the fitted estimator.
    restored = pickle.loads(pickle.dumps(mean_d))
    assert restored(losses, cells).item() == pytest.approx(0.5)
