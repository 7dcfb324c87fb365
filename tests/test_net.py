import numpy as np
import pytest
import torch

from skforml._data import BatchIterator, RowDataset
from skforml._weight_store import MAX_STEP, WeightStore


def _dataset(n_rows=23, n_features=3):
    X = torch.arange(n_rows * n_features, dtype=torch.float32).reshape(n_rows, -1)
    y = torch.arange(n_rows) % 2
    return RowDataset(X, y)


# ---------------------------------------------------------------- BatchIterator


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 5, 23, 100])
def test_batch_iterator_yields_every_row_once_per_epoch(shuffle, batch_size):
    dataset = _dataset()
    iterator = BatchIterator(dataset, batch_size, shuffle=shuffle, seed=0)
    assert len(iterator) == -(-23 // batch_size)
    for _ in range(3):
        rows_seen = []
        n_batches = 0
        for X, y, rows in iterator:
            n_batches += 1
            index = torch.arange(23)[rows]
            assert len(X) == len(y) == len(index) <= batch_size
            assert torch.equal(X, dataset.X[index])
            assert torch.equal(y, dataset.y[index])
            rows_seen.append(index)
        assert n_batches == len(iterator)
        assert sorted(torch.cat(rows_seen).tolist()) == list(range(23))


def _orders(iterator, n_epochs=3):
    return [
        torch.cat([torch.arange(23)[r] for _, _, r in iterator])
        for _ in range(n_epochs)
    ]


def test_batch_iterator_order_is_reproducible_for_a_seed():
    dataset = _dataset()
    first = _orders(BatchIterator(dataset, 4, shuffle=True, seed=11))
    again = _orders(BatchIterator(dataset, 4, shuffle=True, seed=11))
    other = _orders(BatchIterator(dataset, 4, shuffle=True, seed=12))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    # A new order every epoch, and a shuffled one.
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], torch.arange(23))


def test_batch_iterator_order_matches_randperm_of_its_generator():
    # The order is torch.randperm with a generator seeded once per iterator.
    iterator = BatchIterator(_dataset(), 4, shuffle=True, seed=5)
    generator = torch.Generator().manual_seed(5)
    for order in _orders(iterator):
        assert torch.equal(order, torch.randperm(23, generator=generator))


def test_batch_iterator_without_shuffle_yields_views_in_order():
    dataset = _dataset()
    storage = dataset.X.untyped_storage().data_ptr()
    batches = list(BatchIterator(dataset, 5))
    assert torch.equal(torch.cat([X for X, _, _ in batches]), dataset.X)
    for X, y, rows in batches:
        assert torch.equal(
            torch.arange(23)[rows], torch.arange(23)[rows][0] + torch.arange(len(X))
        )
        assert X.untyped_storage().data_ptr() == storage
        assert y.untyped_storage().data_ptr() == dataset.y.untyped_storage().data_ptr()


def test_batch_iterator_without_targets():
    dataset = RowDataset(torch.zeros(7, 2))
    batches = list(BatchIterator(dataset, 3))
    assert [len(X) for X, _, _ in batches] == [3, 3, 1]
    assert all(y is None for _, y, _ in batches)


def test_batch_iterator_does_not_touch_global_rng():
    state = torch.get_rng_state()
    list(BatchIterator(_dataset(), 4, shuffle=True, seed=0))
    assert torch.equal(state, torch.get_rng_state())


# ------------------------------------------------------------------ WeightStore


def _store(n_rows=1000, meta_lr=0.1, sample_weight=None):
    return WeightStore(
        n_rows,
        meta_lr=meta_lr,
        lookahead_lr=1e-3,
        sample_weight=sample_weight,
        loss_ema_decay=0.9,
        device=torch.device("cpu"),
    )


def _rms(x):
    return float(x.pow(2).mean().sqrt())


def test_weight_store_starts_uniform():
    store = _store(10)
    rows = torch.tensor([3, 1, 7, 2])
    torch.testing.assert_close(store.probabilities(rows), torch.full((4,), 0.25))
    torch.testing.assert_close(store.weights(), torch.ones(10))
    assert store.effective_sample_fraction() == pytest.approx(1.0)


@pytest.mark.parametrize("batch_size", [8, 64, 500])
@pytest.mark.parametrize("meta_lr", [0.01, 0.1, 1.0])
def test_weight_store_step_moves_logits_by_about_meta_lr(batch_size, meta_lr):
    store = _store(1000, meta_lr)
    generator = torch.Generator().manual_seed(0)
    steps = []
    for _ in range(40):
        rows = torch.randperm(1000, generator=generator)[:batch_size]
        d = torch.randn(batch_size, generator=generator)
        before = store.logits.clone()
        store.update(rows, d)
        change = store.logits - before
        # Only the batch's logits move.
        others = torch.ones(1000, dtype=torch.bool)
        others[rows] = False
        assert torch.all(change[others] == 0)
        assert change[rows].abs().max() <= MAX_STEP * meta_lr * (1 + 1e-5)
        steps.append(change[rows])
    # The step is meta_lr in root-mean-square over steps (one small batch's
    # own RMS scatters around the running scale).
    assert 0.85 * meta_lr <= _rms(torch.cat(steps)) <= 1.15 * meta_lr
    if batch_size >= 64:
        assert all(0.7 * meta_lr <= _rms(s) <= 1.5 * meta_lr for s in steps)


def test_weight_store_step_does_not_depend_on_gradient_scale():
    rows = torch.arange(50)
    generator = torch.Generator().manual_seed(1)
    ds = [torch.randn(50, generator=generator) for _ in range(5)]
    small, large = _store(50), _store(50)
    for d in ds:
        small.update(rows, 1e-4 * d)
        large.update(rows, 1e4 * d)
    torch.testing.assert_close(small.logits, large.logits, rtol=1e-4, atol=1e-6)


def test_weight_store_step_moves_against_the_weight_gradient():
    # A row whose loss gradient agrees with the meta gradient (d_j large)
    # gains weight: that lowers the meta-loss after the lookahead.
    store = _store(4)
    rows = torch.arange(4)
    p = store.update(rows, torch.tensor([3.0, 1.0, 1.0, -1.0]))
    assert p[0] > p[1] == p[2] > p[3]
    assert store.logits[0] > 0 > store.logits[3]


def test_weight_store_step_is_clipped_per_row():
    store = _store(100, meta_lr=0.2)
    rows = torch.arange(100)
    generator = torch.Generator().manual_seed(2)
    for _ in range(10):
        store.update(rows, 0.01 * torch.randn(100, generator=generator))
    # One row with a huge derivative after many small steps.
    d = 0.01 * torch.randn(100, generator=generator)
    d[17] = 1e6
    before = store.logits.clone()
    store.update(rows, d)
    change = store.logits - before
    assert change.abs().max() <= MAX_STEP * 0.2 * (1 + 1e-6)
    assert change[17] == pytest.approx(MAX_STEP * 0.2, rel=1e-5)


def test_weight_store_update_returns_the_new_batch_weights():
    store = _store(30)
    rows = torch.tensor([4, 9, 2, 20, 11])
    p = store.update(rows, torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]))
    torch.testing.assert_close(p, torch.softmax(store.logits[rows], dim=0))
    torch.testing.assert_close(p.sum(), torch.tensor(1.0))


def test_weight_store_weights_have_mean_one():
    store = _store(200, meta_lr=0.5)
    generator = torch.Generator().manual_seed(3)
    for _ in range(30):
        rows = torch.randperm(200, generator=generator)[:32]
        store.update(rows, torch.randn(32, generator=generator))
    weights = store.weights()
    assert weights.std() > 0.1
    assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(weights, torch.softmax(store.logits, 0) * 200)
    w = weights.double()
    assert store.effective_sample_fraction() == pytest.approx(
        float(w.sum() ** 2 / (w.pow(2).sum() * 200)), rel=1e-5
    )
    assert store.effective_sample_fraction() < 1.0


def test_weight_store_zero_caller_weight_rows_get_weight_zero():
    sample_weight = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.0, 1.0])
    store = _store(6, sample_weight=sample_weight)
    weights = store.weights()
    assert weights[1] == 0 and weights[4] == 0
    assert float(weights.mean()) == pytest.approx(1.0)
    # Caller weights multiply the learned ones: 1 : 2 : 1 : 1 at the start.
    torch.testing.assert_close(
        weights[[0, 2, 3, 5]], torch.tensor([1.2, 2.4, 1.2, 1.2])
    )
    rows = torch.arange(6)
    for _ in range(5):
        p = store.update(rows, torch.tensor([5.0, 9.0, -1.0, 0.0, 9.0, 1.0]))
        assert p[1] == 0 and p[4] == 0
        assert torch.isfinite(p).all()
    weights = store.weights()
    assert weights[1] == 0 and weights[4] == 0
    assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)


def test_weight_store_batch_of_zero_weight_rows_is_finite():
    sample_weight = torch.tensor([1.0, 0.0, 0.0, 1.0])
    store = _store(4, sample_weight=sample_weight)
    rows = torch.tensor([1, 2])
    p = store.probabilities(rows)
    assert torch.isfinite(p).all()
    assert torch.all(p == 0)
    store.update(rows, torch.tensor([1.0, -1.0]))
    assert torch.isfinite(store.logits).all()
    assert torch.isfinite(store.weights()).all()


def test_weight_store_loss_ema():
    store = _store(3)
    rows = torch.tensor([0, 1, 2])
    p = torch.tensor([0.5, 0.25, 0.25])
    store.record_losses(rows, p, torch.tensor([2.0, 4.0, 1.0]))
    store.end_epoch(None)
    # |B| p_i l_i
    torch.testing.assert_close(store.loss_ema, torch.tensor([3.0, 3.0, 0.75]))
    store.record_losses(rows, p, torch.tensor([0.0, 8.0, 1.0]))
    store.end_epoch(None)
    torch.testing.assert_close(
        store.loss_ema, torch.tensor([0.9 * 3.0, 0.9 * 3 + 0.1 * 6, 0.75])
    )
    np.testing.assert_allclose(store.loss_ema.numpy(), [2.7, 3.3, 0.75], rtol=1e-6)
