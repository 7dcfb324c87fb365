"""Synthetic binary classification data with a disadvantaged minority group."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_biased_classification"]


def _check_int(name, value, minimum):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(
            f"{name} must be an integer greater than or equal to {minimum}, "
            f"got {value!r}."
        )


def _check_real(name, value, low, high, *, closed_low, closed_high):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = np.isfinite(value)
    if ok and low is not None:
        ok = value >= low if closed_low else value > low
    if ok and high is not None:
        ok = value <= high if closed_high else value < high
    if not ok:
        left = "[" if closed_low else "("
        right = "]" if closed_high else ")"
        low_s = "-inf" if low is None else low
        high_s = "inf" if high is None else high
        raise ValueError(
            f"{name} must be a real number in {left}{low_s}, {high_s}{right}, "
            f"got {value!r}."
        )


def make_biased_classification(
    n_samples=2000,
    n_features=10,
    *,
    minority_proportion=0.2,
    rule_shift=1.0,
    positive_rate=0.3,
    noise=0.1,
    include_group_feature=True,
    as_frame=False,
    random_state=None,
):
    """Generate binary data where a minority group follows a different rule.

    Features are standard normal for every row. A row of the majority group
    (``group == 0``) is positive when its score ``w @ x`` is among the highest
    ``positive_rate`` fraction of its group. The minority group (``group == 1``)
    is ranked by a different score,
    ``cos(t) * (w @ x) + sin(t) * (u @ x) * (v @ x)`` with
    ``t = rule_shift * pi / 2``, where ``w``, ``u`` and ``v`` are random
    orthonormal directions. The interaction term is a rule that a neural
    network can represent, but it needs more data to learn it than the
    majority's linear rule, and the minority contributes little to the pooled
    loss. A model trained on the pooled data therefore tends to have a lower
    true-positive rate on the minority, which is the situation FORML is built
    to correct. Both groups have the same positive rate, so the gap is not a
    base-rate artefact.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of rows, at least 2.
    n_features : int, default=10
        Number of Gaussian features, at least 3 (the rules use three
        orthogonal directions). Does not count the group column.
    minority_proportion : float, default=0.2
        Fraction of rows in the minority group, in (0, 1). The group sizes
        are exact: ``round(minority_proportion * n_samples)``, clipped so that
        each group has at least one row.
    rule_shift : float, default=1.0
        How far the minority's labelling rule is from the majority's, in
        [0, 1]. 0 gives both groups the same rule; 1 makes the minority's
        rule the pure interaction term, independent of the majority's score.
    positive_rate : float, default=0.3
        Fraction of positive labels within each group, in (0, 1).
    noise : float, default=0.1
        Standard deviation of Gaussian noise added to the unit-variance
        scores before ranking; it blurs the labels near the decision
        boundary. Must be non-negative.
    include_group_feature : bool, default=True
        Whether to append the group indicator as the last feature column, so
        that a model can learn both rules.
    as_frame : bool, default=False
        If True, return a :class:`pandas.DataFrame` with columns
        ``x0, ..., x{n_features - 1}`` (plus ``group`` if included), a
        :class:`pandas.Series` ``y`` named ``"target"`` and a
        :class:`pandas.Series` of groups named ``"group"``.
    random_state : int, RandomState instance or None, default=None
        Seed for the directions, the group assignment, the features and the
        noise. Pass an int for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features + include_group_feature)
        The features, float64.
    y : ndarray of shape (n_samples,)
        Binary labels, 0 or 1.
    sensitive_features : ndarray of shape (n_samples,)
        The group of each row: 0 for the majority, 1 for the minority.

    Examples
    --------
    >>> from skforml.datasets import make_biased_classification
    >>> X, y, groups = make_biased_classification(n_samples=100, random_state=0)
    >>> X.shape
    (100, 11)
    >>> int(groups.sum()), int(y.sum())
    (20, 30)

    """
    _check_int("n_samples", n_samples, 2)
    _check_int("n_features", n_features, 3)
    _check_real(
        "minority_proportion",
        minority_proportion,
        0,
        1,
        closed_low=False,
        closed_high=False,
    )
    _check_real("rule_shift", rule_shift, 0, 1, closed_low=True, closed_high=True)
    _check_real(
        "positive_rate", positive_rate, 0, 1, closed_low=False, closed_high=False
    )
    _check_real("noise", noise, 0, None, closed_low=True, closed_high=False)
    rng = check_random_state(random_state)

    # Three orthonormal directions: the majority's rule and the two factors
    # of the minority's interaction term.
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, 3)))
    w, u, v = basis.T

    n_minority = int(np.clip(round(minority_proportion * n_samples), 1, n_samples - 1))
    groups = np.zeros(n_samples, dtype=np.int64)
    groups[:n_minority] = 1
    groups = rng.permutation(groups)

    X = rng.standard_normal((n_samples, n_features))
    # w @ x and (u @ x) * (v @ x) are uncorrelated with unit variance, so the
    # minority's score keeps unit variance for every rule_shift.
    theta = rule_shift * np.pi / 2
    majority_score = X @ w
    minority_score = np.cos(theta) * majority_score + np.sin(theta) * (X @ u) * (X @ v)
    score = np.where(groups == 1, minority_score, majority_score)
    score = score + noise * rng.standard_normal(n_samples)

    # Rank within each group so both groups have exactly the same base rate.
    y = np.zeros(n_samples, dtype=np.int64)
    for group in (0, 1):
        rows = np.flatnonzero(groups == group)
        n_positive = int(round(positive_rate * rows.size))
        if n_positive:
            top = np.argsort(score[rows], kind="stable")[-n_positive:]
            y[rows[top]] = 1

    if include_group_feature:
        X = np.column_stack([X, groups.astype(X.dtype)])

    if as_frame:
        import pandas as pd

        columns = [f"x{i}" for i in range(n_features)]
        if include_group_feature:
            columns.append("group")
        X = pd.DataFrame(X, columns=columns)
        y = pd.Series(y, name="target")
        groups = pd.Series(groups, name="group")
    return X, y, groups
