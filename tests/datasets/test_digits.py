import numpy as np
import pytest

from skforml.datasets import load_digits_noisy


def test_shapes_scaling_and_split():
    data = load_digits_noisy(random_state=0)
    assert data.X_train.shape == (1347, 64)
    assert data.X_test.shape == (450, 64)
    assert data.X_train.min() >= 0.0 and data.X_train.max() <= 1.0
    assert data.X_train.max() == 1.0
    # Stratified: every class keeps about its share in both parts.
    train_counts = np.bincount(data.y_train_clean, minlength=10)
    test_counts = np.bincount(data.y_test, minlength=10)
    np.testing.assert_allclose(train_counts / test_counts, 1347 / 450, rtol=0.05)
    assert isinstance(data.DESCR, str) and "flip_rate" in data.DESCR


def test_flipped_labels():
    data = load_digits_noisy(flip_rate=0.2, flip_to=2, random_state=0)
    flipped = data.flipped
    assert flipped.dtype == bool and flipped.shape == data.y_train.shape
    assert flipped.sum() == round(0.2 * 1347)
    assert (data.y_train[flipped] == 2).all()
    # Only rows that were not already 2 are flipped; the rest are untouched.
    assert (data.y_train_clean[flipped] != 2).all()
    np.testing.assert_array_equal(data.y_train[~flipped], data.y_train_clean[~flipped])


def test_other_target_and_no_noise():
    data = load_digits_noisy(flip_rate=0.1, flip_to=7, random_state=3)
    assert (data.y_train[data.flipped] == 7).all()
    clean = load_digits_noisy(flip_rate=0.0, random_state=3)
    assert not clean.flipped.any()
    np.testing.assert_array_equal(clean.y_train, clean.y_train_clean)


def test_deterministic_for_a_seed():
    a = load_digits_noisy(random_state=5)
    b = load_digits_noisy(random_state=5)
    c = load_digits_noisy(random_state=6)
    for key in ("X_train", "y_train", "flipped", "y_test"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a.flipped, c.flipped)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"flip_rate": 1.0}, "flip_rate"),
        ({"flip_rate": -0.1}, "flip_rate"),
        ({"flip_to": 10}, "flip_to"),
        ({"flip_to": 2.0}, "flip_to"),
        ({"test_size": 0}, "test_size"),
        ({"test_size": 1.5}, "test_size"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        load_digits_noisy(**kwargs)


def test_too_many_flips():
    with pytest.raises(ValueError, match="flip_rate=0.95"):
        load_digits_noisy(flip_rate=0.95)
