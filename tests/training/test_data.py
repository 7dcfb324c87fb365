import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from skforml import FORMLClassifier
from skforml.training._data import BatchIterator, DatasetRows, RowDataset, batch_loader


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


# ------------------------------------------------------------ torch Datasets


FIT = {"max_epochs": 2, "batch_size": 32, "hidden_layer_sizes": (8,)}


class ItemsOnly(Dataset):
    """Items ``x`` alone (labels passed to fit), counting reads."""

    def __init__(self, X):
        self.X = X
        self.reads = 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, row):
        self.reads += 1
        return self.X[row]


def test_dataset_loader_yields_positions_in_batch_iterator_order():
    X = torch.arange(46, dtype=torch.float64).reshape(23, 2)
    y = torch.arange(23) % 2
    index = torch.arange(3, 23)
    arrays = BatchIterator(RowDataset(X.float(), y, index), 6, shuffle=True, seed=3)
    loader = batch_loader(
        DatasetRows(TensorDataset(X), y, index.numpy()), 6, shuffle=True, seed=3
    )
    for _ in range(2):  # a new order every epoch, the same in both
        for (Xa, ya, ra), (Xd, yd, rd) in zip(arrays, loader, strict=True):
            assert Xd.dtype == torch.float32  # float64 items become float32
            assert torch.equal(Xa, Xd) and torch.equal(ya, yd)
            assert torch.equal(ra, rd)


def test_dataset_loader_without_rows_for_prediction():
    loader = batch_loader(DatasetRows(ItemsOnly(np.ones((5, 3)))), 2, with_rows=False)
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 2, 2]
    assert [len(X) for X, _ in batches] == [2, 2, 1]


def test_fit_on_dataset_equals_fit_on_its_array(biased_data):
    X, y, groups = biased_data
    X = X.astype(np.float32)
    on_array = FORMLClassifier(**FIT, random_state=0).fit(
        X, y, sensitive_features=groups
    )
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    # y read from the (x, y) items.
    on_dataset = FORMLClassifier(**FIT, random_state=0).fit(
        dataset, sensitive_features=groups
    )
    assert on_dataset.sample_weights_.shape == (len(dataset),)
    np.testing.assert_array_equal(
        on_dataset.validation_mask_, on_array.validation_mask_
    )
    np.testing.assert_allclose(
        on_dataset.sample_weights_, on_array.sample_weights_, rtol=1e-6
    )
    assert np.std(on_dataset.sample_weights_[~on_dataset.validation_mask_]) > 1e-3
    np.testing.assert_allclose(
        on_dataset.predict_proba(dataset), on_array.predict_proba(X), atol=1e-6
    )
    np.testing.assert_array_equal(on_dataset.predict(dataset), on_array.predict(X))
    assert on_dataset.n_features_in_ == X.shape[1]


def test_fit_on_dataset_with_labels_given_and_workers(multiclass_data):
    X, y, groups = multiclass_data
    dataset = ItemsOnly(X.astype(np.float64))
    clf = FORMLClassifier(**FIT, num_workers=1, random_state=0)
    clf.fit(dataset, y, sensitive_features=groups)
    assert set(clf.classes_) == {"cat", "dog", "emu"}
    assert clf.sample_weights_.shape == (len(X),)
    assert (clf.sample_weights_[clf.validation_mask_] == 0).all()
    assert set(clf.predict(dataset)) <= set(clf.classes_)
    # The array of the same items predicts the same.
    np.testing.assert_allclose(
        clf.predict_proba(dataset), clf.predict_proba(X), atol=1e-6
    )


def test_dataset_targets_attribute_is_read_without_loading_items(biased_data):
    X, y, groups = biased_data
    dataset = ItemsOnly(X)
    dataset.targets = y
    clf = FORMLClassifier(**FIT, random_state=0).fit(dataset)
    assert clf.sample_weights_.shape == (len(y),)
    assert list(clf.classes_) == [0, 1]


def test_dataset_errors_name_the_argument(biased_data):
    X, y, _ = biased_data
    with pytest.raises(ValueError, match="items are not \\(x, y\\) pairs"):
        FORMLClassifier(**FIT).fit(ItemsOnly(X))
    with pytest.raises(ValueError, match="X is an empty Dataset"):
        FORMLClassifier(**FIT).fit(ItemsOnly(X[:0]), y[:0])
    with pytest.raises(ValueError, match="y"):
        FORMLClassifier(**FIT).fit(ItemsOnly(X), y[:10])
    images = ItemsOnly(X[:, :9].reshape(-1, 1, 3, 3))
    with pytest.raises(ValueError, match="built-in MLP"):
        FORMLClassifier(**FIT).fit(images, y)
    clf = FORMLClassifier(**FIT, random_state=0).fit(ItemsOnly(X), y)
    with pytest.raises(ValueError, match="fitted on rows of shape"):
        clf.predict(ItemsOnly(X[:, :5]))
