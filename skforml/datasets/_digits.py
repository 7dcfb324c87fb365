"""scikit-learn's digits with systematically corrupted training labels."""

import numbers

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_digits_noisy"]

_DESCR = """\
Noisy digits
------------

scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, 64 pixel
features) scaled to [0, 1] and split, stratified by class, into a train and a
test set. A fraction ``flip_rate`` of the training rows, drawn at random among
the rows whose label is not ``flip_to``, then has its label replaced by
``flip_to``. The test labels stay clean.

This is a small version of the label-corruption experiment of the FORML paper
(Yan, Seto and Apostoloff, 2022, Section 4.4): the corrupted labels all point
to one class, so a network trained on them loses recall on the other classes
unevenly, and a reweighting method that uses a small clean validation set can
learn to down-weight the flipped rows.

``y_train_clean`` keeps the original training labels and ``flipped`` marks
the corrupted rows, to evaluate how well a method finds them.
"""


def load_digits_noisy(*, flip_rate=0.2, flip_to=2, test_size=0.25, random_state=None):
    """Load the digits data with a fraction of training labels flipped.

    The images come from :func:`sklearn.datasets.load_digits`, which ships
    with scikit-learn, so no network access is needed.

    Parameters
    ----------
    flip_rate : float, default=0.2
        Fraction of all training rows whose label is replaced by ``flip_to``,
        in [0, 1). The rows are drawn among those whose label is not already
        ``flip_to``, so ``flipped.mean()`` equals ``flip_rate`` up to
        rounding. Must not exceed the fraction of such rows (about 0.9).
    flip_to : int, default=2
        The digit, 0 to 9, that corrupted labels are set to.
    test_size : float, default=0.25
        Fraction of the images held out as a clean test set, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seed for the split and for choosing the flipped rows. Pass an int for
        reproducible output.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        X_train : ndarray of shape (n_train, 64)
            Training pixels, float64 in [0, 1].
        X_test : ndarray of shape (n_test, 64)
            Test pixels, float64 in [0, 1].
        y_train : ndarray of shape (n_train,)
            Training labels after flipping.
        y_test : ndarray of shape (n_test,)
            Clean test labels.
        y_train_clean : ndarray of shape (n_train,)
            Training labels before flipping.
        flipped : ndarray of shape (n_train,)
            Boolean mask of the training rows whose label was flipped.
        DESCR : str
            Description of the dataset.

    Examples
    --------
    >>> from skforml.datasets import load_digits_noisy
    >>> data = load_digits_noisy(flip_rate=0.2, random_state=0)
    >>> data.X_train.shape, data.X_test.shape
    ((1347, 64), (450, 64))
    >>> round(float(data.flipped.mean()), 2)
    0.2
    >>> bool((data.y_train[data.flipped] == 2).all())
    True

    """
    if (
        isinstance(flip_rate, bool)
        or not isinstance(flip_rate, numbers.Real)
        or not 0 <= flip_rate < 1
    ):
        raise ValueError(
            f"flip_rate must be a real number in [0, 1), got {flip_rate!r}."
        )
    if (
        isinstance(flip_to, bool)
        or not isinstance(flip_to, numbers.Integral)
        or not 0 <= flip_to <= 9
    ):
        raise ValueError(f"flip_to must be an integer digit 0 to 9, got {flip_to!r}.")
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, numbers.Real)
        or not 0 < test_size < 1
    ):
        raise ValueError(
            f"test_size must be a real number in (0, 1), got {test_size!r}."
        )
    rng = check_random_state(random_state)

    digits = load_digits()
    X = digits.data / 16.0  # pixel intensities are integers 0..16
    X_train, X_test, y_train_clean, y_test = train_test_split(
        X,
        digits.target,
        test_size=test_size,
        stratify=digits.target,
        random_state=rng,
    )

    candidates = np.flatnonzero(y_train_clean != flip_to)
    n_flip = int(round(flip_rate * y_train_clean.size))
    if n_flip > candidates.size:
        raise ValueError(
            f"flip_rate={flip_rate!r} asks for {n_flip} flipped labels, but only "
            f"{candidates.size} training labels differ from flip_to={flip_to!r}."
        )
    flipped = np.zeros(y_train_clean.size, dtype=bool)
    flipped[rng.choice(candidates, size=n_flip, replace=False)] = True
    y_train = y_train_clean.copy()
    y_train[flipped] = flip_to

    return Bunch(
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        y_train_clean=y_train_clean,
        flipped=flipped,
        DESCR=_DESCR,
    )
