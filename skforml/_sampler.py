"""FORMLSampler: condense a data set with the weights FORML learns.

An imbalanced-learn sampler (:class:`imblearn.base.BaseSampler`): its tags,
``fit``/``fit_resample`` and ``set_fit_resample_request`` are imbalanced-learn's,
so that its ``Pipeline`` and its check suite take it like any of theirs.
"""

from numbers import Integral, Real

import numpy as np
from imblearn.base import BaseSampler
from imblearn.utils import check_target_type
from sklearn.base import _fit_context, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _get_feature_names, _num_features, _num_samples

from ._classifier import FORMLClassifier
from .checks._arguments import check_same_length
from .checks._groups import encode_sensitive_features, stratum_ids

__all__ = ["FORMLSampler"]


class FORMLSampler(BaseSampler):
    """Remove the rows of lowest FORML weighted loss (dataset condensation).

    The sampler trains a FORML estimator on ``X, y`` and removes the training
    rows with the lowest exponential moving average, over epochs, of their
    normalised weighted loss (``weighted_loss_ema_``): rows that the learned
    weights made (or found) contribute least to training. This is the
    condensation of the FORML paper (Section 4.5), where retraining a plain
    model on the condensed set lowered the fairness gap at equal accuracy.
    It is an imbalanced-learn sampler (:class:`imblearn.base.BaseSampler`),
    so it can precede any estimator in an ``imblearn.pipeline.Pipeline``,
    with ``sensitive_features`` routed to it by
    ``set_fit_resample_request(sensitive_features=True)``; like
    imbalanced-learn's cleaning samplers it removes rows by a criterion
    rather than to reach a class count, so it takes no ``sampling_strategy``.

    Parameters
    ----------
    estimator : estimator, default=None
        The FORML estimator whose weights rank the rows, e.g. a
        :class:`~skforml.FORMLClassifier` with any settings; it is cloned and
        must expose ``weighted_loss_ema_`` after ``fit``. None uses
        ``FORMLClassifier()``, or, when ``fit_resample`` gets no
        ``sensitive_features``,
        ``FORMLClassifier(constraint="true_positive_rate_parity")``, because
        the default ``"equalized_odds"`` needs sensitive features (without
        them FORML compares per-class losses).
    n_remove : int, default=None
        Number of rows to remove. When given it takes precedence and
        ``fraction`` is ignored.
    fraction : float, default=0.1
        Share of the rows of ``X`` to remove, in [0, 1), used when
        ``n_remove`` is None: ``floor(fraction * n_samples)`` rows go.
    keep_groups : bool, default=True
        Never remove the last row of a (group, label) cell, so that every
        group, and every label of every group, stays in the condensed data.
    random_state : int, RandomState instance or None, default=None
        Passed to the cloned estimator when its own ``random_state`` is None.
        An int gives the same condensed data on every call.
    rank_by : {"weighted_loss_ema", "sample_weight"}, default="weighted_loss_ema"
        Which fitted attribute ranks the rows, lowest removed first:
        ``"weighted_loss_ema"`` is the paper's criterion; ``"sample_weight"``
        removes the rows of lowest learned weight (``sample_weights_``), the
        ranking of :func:`~skforml.rank_downweighted`, which removes more
        mislabelled rows (see Notes).

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    sample_indices_ : ndarray of int
        Positions (0-based, sorted) in ``X`` of the rows kept; index
        ``sensitive_features`` or sample weights with it.
    removed_indices_ : ndarray of int
        Positions of the removed rows, in the order of ``rank_by``, lowest
        first.
    sampling_strategy_ : dict
        Number of rows kept of every class, ``{label: count}`` (imbalanced-
        learn's fitted attribute, as its under-samplers report it).
    n_features_in_ : int
        Number of features of ``X``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X`` when it is a DataFrame with string columns.

    See Also
    --------
    skforml.FORMLClassifier : The estimator that learns the weights.
    skforml.rank_downweighted : Rows ranked by learned weight, to find
        mislabelled rows.

    Notes
    -----
    Only training rows can be removed: the rows FORML holds out for
    validation have no weighted loss (``weighted_loss_ema_`` is NaN) and are
    always kept. Ties in the weighted loss are broken by row position, so
    the result depends only on the data and the seed.

    Removing the rows of *lowest* weighted loss follows the paper: they are
    easy, redundant rows, and rows whose weight FORML drove down far enough
    to outweigh their loss. Rows with wrong labels keep a high loss, so the
    longer FORML trains, the fewer of them this criterion removes; when the
    data hold wrong labels, ``rank_by="sample_weight"`` removes them more
    reliably. Which rows FORML down-weights depends on its meta-loss: on
    noisy digits (``benchmarks/bench_condensation.py``, 20% of the labels
    flipped, no sensitive features) FORML with
    ``meta_loss="cross_entropy"`` gave its lowest weights mostly to flipped
    rows, and removing 10% of the rows by weight took out about 90% flipped
    ones and made the retrained model more accurate and fairer than the
    full data or a random subset; the default fairness meta-loss instead
    weighed flipped rows *up* (their class has the highest validation
    loss), as a validation set carved from noisy data is noisy too.

    References
    ----------
    .. [1] J. Yan, S. Seto, N. Apostoloff. "FORML: Learning to Reweight Data
       for Fairness". arXiv:2202.01719, 2022, Section 4.5.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, FORMLSampler
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> sensitive = (X[:, 0] > 0).astype(int)
    >>> sampler = FORMLSampler(
    ...     FORMLClassifier(max_epochs=3), n_remove=30, random_state=0
    ... )
    >>> X_res, y_res = sampler.fit_resample(X, y, sensitive_features=sensitive)
    >>> X_res.shape
    (270, 20)
    >>> sensitive_res = sensitive[sampler.sample_indices_]
    >>> sorted(np.unique(sensitive_res).tolist())
    [0, 1]

    In an imbalanced-learn ``Pipeline``, with ``sensitive_features`` routed to
    the sampler:

    >>> import sklearn
    >>> from imblearn.pipeline import Pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     condense = FORMLSampler(
    ...         FORMLClassifier(max_epochs=3), n_remove=30, random_state=0
    ...     ).set_fit_resample_request(sensitive_features=True)
    ...     pipe = Pipeline([("condense", condense), ("model", LogisticRegression())])
    ...     pipe = pipe.fit(X, y, sensitive_features=sensitive)
    >>> len(pipe.named_steps["condense"].sample_indices_)
    270

    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit"])],
        "n_remove": [None, Interval(Integral, 0, None, closed="left")],
        "fraction": [Interval(Real, 0, 1, closed="left")],
        "keep_groups": ["boolean"],
        "random_state": ["random_state"],
        "rank_by": [StrOptions({"weighted_loss_ema", "sample_weight"})],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_remove=None,
        fraction=0.1,
        keep_groups=True,
        random_state=None,
        rank_by="weighted_loss_ema",
    ):
        self.estimator = estimator
        self.n_remove = n_remove
        self.fraction = fraction
        self.keep_groups = keep_groups
        self.random_state = random_state
        self.rank_by = rank_by

    def _n_to_remove(self, n_samples):
        if self.n_remove is not None:
            if self.n_remove >= n_samples:
                raise ValueError(
                    f"n_remove={self.n_remove} must be smaller than the number "
                    f"of rows ({n_samples})."
                )
            return int(self.n_remove), "n_remove"
        return int(np.floor(self.fraction * n_samples)), "fraction"

    def _make_estimator(self, sensitive_features):
        if self.estimator is None:
            estimator = (
                FORMLClassifier(constraint="true_positive_rate_parity")
                if sensitive_features is None
                else FORMLClassifier()
            )
        else:
            estimator = clone(self.estimator)
        params = estimator.get_params(deep=False)
        if "random_state" in params and params["random_state"] is None:
            estimator.set_params(random_state=self.random_state)
        return estimator

    # Rows go by a criterion, not to reach a class count: imbalanced-learn's
    # "clean-sampling" kind (no sampling_strategy to check).
    _sampling_type = "clean-sampling"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The FORML estimator trains on dense rows.
        tags.input_tags.sparse = False
        tags.sampler_tags.sample_indices = True
        return tags

    def fit(self, X, y, **params):
        """Fit the FORML estimator and choose the rows to keep.

        The same as :meth:`fit_resample` without returning the rows: the
        kept rows are ``sample_indices_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data, as the estimator accepts it.
        y : array-like or Series of shape (n_samples,)
            Labels.
        **params : dict
            ``sensitive_features`` and further arguments of the estimator's
            ``fit``, as in :meth:`fit_resample`. (Taken as ``**params``, as
            imbalanced-learn's samplers do, so that a ``Pipeline`` routes
            ``sensitive_features`` to :meth:`fit_resample` alone.)

        Returns
        -------
        self : FORMLSampler
            The fitted sampler.

        """
        self.fit_resample(X, y, **params)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_resample(self, X, y, *, sensitive_features=None, **fit_params):
        """Fit the FORML estimator and return the condensed data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data, as the estimator accepts it.
        y : array-like or Series of shape (n_samples,)
            Labels; a column vector, or classes one-hot encoded (one 1 per
            row), are taken as imbalanced-learn's samplers take them.
        sensitive_features : array-like, Series, list, DataFrame or dict, \
default=None
            Sensitive group of each row, passed to the estimator's ``fit``;
            several columns form intersectional groups.
            None uses the classes as the groups.
        **fit_params : dict
            Further arguments of the estimator's ``fit``, e.g.
            ``sample_weight``.

        Returns
        -------
        X_res : ndarray, DataFrame or list
            The kept rows of ``X``, in their original order and of the type of
            ``X`` (a DataFrame keeps its index).
        y_res : ndarray, Series, DataFrame or list
            The kept labels, of the type and shape of ``y``.

        Raises
        ------
        ValueError
            When ``y`` is not a classification target or holds one class,
            and when ``n_remove`` (or ``fraction``) asks for more rows than
            can be removed: the validation rows, and with ``keep_groups`` the
            last row of every (group, label) cell, are kept.

        """
        check_same_length(X=X, y=y)
        labels = _class_labels(y)
        self._fit_resample(
            X, labels, sensitive_features=sensitive_features, **fit_params
        )
        return (
            _safe_indexing(X, self.sample_indices_),
            _safe_indexing(y, self.sample_indices_),
        )

    def _fit_resample(self, X, y, *, sensitive_features=None, **fit_params):
        """Fit the estimator on ``X, y`` (1-D labels); set the fitted attributes."""
        n_samples = _num_samples(X)
        n_remove, argument = self._n_to_remove(n_samples)
        y_codes = LabelEncoder().fit_transform(np.asarray(y))
        if sensitive_features is None:
            group_codes = y_codes
        else:
            group_codes, _ = encode_sensitive_features(sensitive_features, n_samples)
        # One id per occupied (group, label) cell, in the order of the strata.
        _, cells = np.unique(
            stratum_ids(group_codes, y_codes, y_codes.max() + 1),
            return_inverse=True,
        )
        cells = cells.ravel()
        if self.keep_groups and n_remove > n_samples - cells.max() - 1:
            raise ValueError(
                f"{argument} asks to remove {n_remove} of {n_samples} rows, but "
                f"keep_groups=True keeps one row of each of the {cells.max() + 1} "
                "(group, label) cells."
            )

        estimator = self._make_estimator(sensitive_features)
        estimator.fit(X, y, sensitive_features=sensitive_features, **fit_params)
        ema = getattr(estimator, "weighted_loss_ema_", None)
        if ema is None:
            raise TypeError(
                f"{type(estimator).__name__} has no weighted_loss_ema_ after fit; "
                "FORMLSampler needs a FORML estimator such as FORMLClassifier."
            )
        score = np.asarray(ema, dtype=float)
        if self.rank_by == "sample_weight":
            # Same candidates as the paper's criterion: validation rows stay.
            score = np.where(
                np.isnan(score), np.nan, np.asarray(estimator.sample_weights_, float)
            )
        self.estimator_ = estimator
        removed = self._select(score, cells, n_remove, argument)
        kept = np.ones(n_samples, dtype=bool)
        kept[removed] = False
        self.removed_indices_ = removed
        self.sample_indices_ = np.flatnonzero(kept)
        classes, counts = np.unique(np.asarray(y)[kept], return_counts=True)
        self.sampling_strategy_ = {
            _plain(label): int(count) for label, count in zip(classes, counts)
        }
        self._set_feature_attributes(X, estimator)

    def _set_feature_attributes(self, X, estimator):
        """``n_features_in_`` and ``feature_names_in_``, as the estimator saw them."""
        n_features = getattr(estimator, "n_features_in_", None)
        names = getattr(estimator, "feature_names_in_", None)
        if n_features is None:
            try:
                n_features, names = _num_features(X), _get_feature_names(X)
            except TypeError:  # not rows of features (a torch Dataset)
                n_features = None
        for attribute, value in (
            ("n_features_in_", n_features),
            ("feature_names_in_", names),
        ):
            if value is not None:
                setattr(self, attribute, value)
            elif hasattr(self, attribute):  # left by an earlier fit
                delattr(self, attribute)

    def _select(self, score, cells, n_remove, argument):
        """Rows to remove: lowest score first, within the limits."""
        candidates = np.flatnonzero(~np.isnan(score))
        # Stable sort: ties go by row position, so the choice is deterministic.
        order = candidates[np.argsort(score[candidates], kind="stable")]
        if not self.keep_groups:
            if n_remove > len(order):
                raise ValueError(
                    f"{argument} asks to remove {n_remove} rows, but only "
                    f"{len(order)} are training rows; the {len(score) - len(order)} "
                    "validation rows are always kept."
                )
            return order[:n_remove]
        left = np.bincount(cells)
        removed = []
        for row in order:
            if len(removed) == n_remove:
                break
            if left[cells[row]] > 1:
                left[cells[row]] -= 1
                removed.append(row)
        if len(removed) < n_remove:
            raise ValueError(
                f"{argument} asks to remove {n_remove} rows, but at most "
                f"{len(removed)} can go: the {len(score) - len(order)} validation "
                "rows and, with keep_groups=True, the last row of every "
                "(group, label) cell are kept."
            )
        return np.asarray(removed, dtype=np.intp)


def _class_labels(y):
    """Labels of ``y`` as the FORML estimator takes them.

    A 1-D ``y`` is passed on as it is (a Series keeps its index, which the
    estimator checks against ``X``'s); a column vector becomes 1-D and a
    one-hot ``y`` its column numbers, as in imbalanced-learn's samplers.
    """
    labels = check_target_type(y)
    check_classification_targets(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError(
            "y holds a single class; FORMLSampler fits a classifier, which needs "
            "at least two classes."
        )
    return y if np.ndim(y) == 1 else labels


def _plain(label):
    """A NumPy scalar as the Python value (keys of ``sampling_strategy_``)."""
    return label.item() if isinstance(label, np.generic) else label
