import pytest
import torch

from skforml._data import BatchIterator, RowDataset


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
