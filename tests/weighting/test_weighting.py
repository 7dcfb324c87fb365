import numpy as np
import pytest
import torch

from skforml.weighting._base import (
    MAX_STEP,
    FORMLWeights,
    TrainingRows,
    WeightedLossAverage,
)

# ----------------------------------------------------------------- FORMLWeights


def _store(n_rows=1000, meta_lr=0.1, sample_weight=None):
    store = FORMLWeights(meta_lr)
    rows = TrainingRows(
        y=np.zeros(n_rows, dtype=int),
        groups=np.zeros(n_rows, dtype=int),
        n_classes=2,
        n_groups=1,
        sample_weight=None if sample_weight is None else np.asarray(sample_weight),
        rng=np.random.RandomState(0),
    )
    store.start(rows, torch.device("cpu"))
    return store


def _update(store, rows, d):
    return store.update(rows, d, store.batch_weights(rows))


def _rms(x):
    return float(x.pow(2).mean().sqrt())


def test_weight_store_starts_uniform():
    store = _store(10)
    rows = torch.tensor([3, 1, 7, 2])
    torch.testing.assert_close(store.batch_weights(rows), torch.full((4,), 0.25))
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
        _update(store, rows, d)
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
        _update(small, rows, 1e-4 * d)
        _update(large, rows, 1e4 * d)
    torch.testing.assert_close(small.logits, large.logits, rtol=1e-4, atol=1e-6)


def test_weight_store_step_moves_against_the_weight_gradient():
    # A row whose loss gradient agrees with the meta gradient (d_j large)
    # gains weight: that lowers the meta-loss after the lookahead.
    store = _store(4)
    rows = torch.arange(4)
    p = _update(store, rows, torch.tensor([3.0, 1.0, 1.0, -1.0]))
    assert p[0] > p[1] == p[2] > p[3]
    assert store.logits[0] > 0 > store.logits[3]


def test_weight_store_step_is_clipped_per_row():
    store = _store(100, meta_lr=0.2)
    rows = torch.arange(100)
    generator = torch.Generator().manual_seed(2)
    for _ in range(10):
        _update(store, rows, 0.01 * torch.randn(100, generator=generator))
    # One row with a huge derivative after many small steps.
    d = 0.01 * torch.randn(100, generator=generator)
    d[17] = 1e6
    before = store.logits.clone()
    _update(store, rows, d)
    change = store.logits - before
    assert change.abs().max() <= MAX_STEP * 0.2 * (1 + 1e-6)
    assert change[17] == pytest.approx(MAX_STEP * 0.2, rel=1e-5)


def test_weight_store_update_returns_the_new_batch_weights():
    store = _store(30)
    rows = torch.tensor([4, 9, 2, 20, 11])
    p = _update(store, rows, torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]))
    torch.testing.assert_close(p, torch.softmax(store.logits[rows], dim=0))
    torch.testing.assert_close(p.sum(), torch.tensor(1.0))


def test_weight_store_weights_have_mean_one():
    store = _store(200, meta_lr=0.5)
    generator = torch.Generator().manual_seed(3)
    for _ in range(30):
        rows = torch.randperm(200, generator=generator)[:32]
        _update(store, rows, torch.randn(32, generator=generator))
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
        p = _update(store, rows, torch.tensor([5.0, 9.0, -1.0, 0.0, 9.0, 1.0]))
        assert p[1] == 0 and p[4] == 0
        assert torch.isfinite(p).all()
    weights = store.weights()
    assert weights[1] == 0 and weights[4] == 0
    assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)


def test_weight_store_batch_of_zero_weight_rows_is_finite():
    sample_weight = torch.tensor([1.0, 0.0, 0.0, 1.0])
    store = _store(4, sample_weight=sample_weight)
    rows = torch.tensor([1, 2])
    p = store.batch_weights(rows)
    assert torch.isfinite(p).all()
    assert torch.all(p == 0)
    _update(store, rows, torch.tensor([1.0, -1.0]))
    assert torch.isfinite(store.logits).all()
    assert torch.isfinite(store.weights()).all()


def test_weighted_loss_average():
    average = WeightedLossAverage(3, 0.9, torch.device("cpu"))
    rows = torch.tensor([0, 1, 2])
    p = torch.tensor([0.5, 0.25, 0.25])
    average.record(rows, p, torch.tensor([2.0, 4.0, 1.0]))
    average.end_epoch()
    # |B| p_i l_i
    torch.testing.assert_close(average.average, torch.tensor([3.0, 3.0, 0.75]))
    average.record(rows, p, torch.tensor([0.0, 8.0, 1.0]))
    average.end_epoch()
    np.testing.assert_allclose(average.average.numpy(), [2.7, 3.3, 0.75], rtol=1e-6)


def test_state_dict_round_trip():
    store = _store(20, meta_lr=0.5)
    rows = torch.arange(20)
    _update(store, rows, torch.randn(20, generator=torch.Generator().manual_seed(0)))
    state = store.state_dict()
    before = store.logits.clone()
    _update(store, rows, torch.ones(20).cumsum(0))
    assert not torch.equal(store.logits, before)
    store.load_state_dict(state)
    torch.testing.assert_close(store.logits, before)
    # The copy is independent of later steps.
    _update(store, rows, torch.ones(20).cumsum(0))
    torch.testing.assert_close(state["logits"], before)
