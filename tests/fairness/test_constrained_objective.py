"""The constrained meta-objective (``meta_loss="constrained"``): its moments,
its weight gradient against independent computations, its multipliers, the
tolerance's resolution warning, and what each constraint does to its own gap.
"""

import numpy as np
import pytest
import torch
from _helpers import LOOKAHEAD_LR, closed_form_weight_gradient, lookahead
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from torch import nn
from torch.func import functional_call

from skforml import FORMLClassifier, ToleranceResolutionWarning
from skforml.datasets import make_biased_classification
from skforml.engines._base import (
    ENGINES,
    per_row_loss,
    run_engine,
)
from skforml.engines._multistep import MultiStep
from skforml.fairness._base import make_constraint
from skforml.fairness._objectives import (
    MAX_MULTIPLIER,
    MIN_MULTIPLIER,
    ConstrainedObjective,
    cell_rates,
    hard_rate_gaps,
)

CONSTRAINTS = [
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "equalized_odds",
    "demographic_parity",
    "error_rate_parity",
]


def moment_spec(constraint, n_groups=2, n_classes=2, groups_are_classes=False):
    return make_constraint(constraint).compile(
        group_names=list(range(n_groups)),
        class_names=list(range(n_classes)),
        groups_are_classes=groups_are_classes,
        present=np.ones(n_groups * n_classes, dtype=bool),
        moments=True,
    )


def random_predictions(seed, n=400, n_groups=3):
    rng = np.random.RandomState(seed)
    y_true = rng.randint(2, size=n)
    groups = rng.randint(n_groups, size=n)
    # Group-dependent error rates, so that the gaps are not zero.
    flip = rng.rand(n) < 0.1 + 0.15 * groups
    return y_true, np.where(flip, 1 - y_true, y_true), groups


# ---------------------------------------------------------------- the moments


@pytest.mark.parametrize("seed", [0, 1])
def test_hard_rates_are_fairlearns_rates_by_group(seed):
    y_true, y_pred, groups = random_predictions(seed)
    strata = groups * 2 + y_true
    onehot = torch.nn.functional.one_hot(torch.as_tensor(y_pred), 2).double()
    expected = {
        "true_positive_rate_parity": true_positive_rate,
        "false_positive_rate_parity": false_positive_rate,
        "demographic_parity": selection_rate,
    }
    for name, metric in expected.items():
        spec = moment_spec(name, n_groups=3)
        values = make_constraint(name).rate_values(onehot, torch.as_tensor(y_true))
        cells = torch.as_tensor(spec.cells(strata))
        rates, _ = cell_rates(values, cells, torch.ones(len(cells)), spec.n_cells)
        by_group = MetricFrame(
            metrics=metric, y_true=y_true, y_pred=y_pred, sensitive_features=groups
        ).by_group.to_numpy()
        if name == "false_positive_rate_parity":
            by_group = 1 - by_group  # the rate of the true class on negatives
        np.testing.assert_allclose(rates.numpy(), by_group, atol=1e-12)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_hard_gaps_equal_the_constraints_disparity(constraint, seed):
    y_true, y_pred, groups = random_predictions(seed)
    spec = moment_spec(constraint, n_groups=3)
    gaps, errors = hard_rate_gaps(
        make_constraint(constraint), spec, y_true, y_pred,
        spec.cells(groups * 2 + y_true), np.ones(len(y_true)), 2,
    )  # fmt: skip
    disparity = make_constraint(constraint).disparity(y_true, y_pred, groups)
    assert gaps.max() == pytest.approx(disparity)
    assert (errors > 0).all()
    fairlearn = {
        "equalized_odds": equalized_odds_difference,
        "demographic_parity": demographic_parity_difference,
    }
    if constraint in fairlearn:
        expected = fairlearn[constraint](y_true, y_pred, sensitive_features=groups)
        assert gaps.max() == pytest.approx(expected)


def test_groups_as_classes_moments_are_per_class_recall():
    rng = np.random.RandomState(0)
    y_true = rng.randint(3, size=300)
    y_pred = np.where(rng.rand(300) < 0.3 * y_true / 2, (y_true + 1) % 3, y_true)
    spec = moment_spec("equalized_odds", 3, 3, groups_are_classes=True)
    gaps, _ = hard_rate_gaps(
        make_constraint("equalized_odds"), spec, y_true, y_pred,
        spec.cells(y_true * 3 + y_true), np.ones(300), 3,
    )  # fmt: skip
    recall = [np.mean(y_pred[y_true == c] == c) for c in range(3)]
    assert gaps == pytest.approx([max(recall) - min(recall)])


def test_soft_penalty_for_two_groups_is_the_soft_rate_gap():
    proba = torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])
    y = torch.tensor([1, 1, 1, 1])
    groups = torch.tensor([0, 0, 1, 1])
    spec = moment_spec("true_positive_rate_parity")

    def penalty(surrogate):
        objective = ConstrainedObjective(
            make_constraint("true_positive_rate_parity"),
            spec,
            torch.ones(4),
            per_row_loss,
            multiplier=1.0,
            surrogate=surrogate,
        )
        (value,) = objective.penalties(proba, y, groups * 2 + y)
        return value.item()

    assert penalty("rate") == pytest.approx(abs((0.8 + 0.4) / 2 - (0.7 + 0.1) / 2))
    log = np.log
    expected = abs((log(0.8) + log(0.4)) / 2 - (log(0.7) + log(0.1)) / 2)
    assert penalty("log_rate") == pytest.approx(expected)


# ------------------------------------------- the weight gradient, independently


def make_mlp(seed, n_features=5, width=6):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, 2)
    ).double()


BUCKETS = {
    # (rows of the rate, value of a row) of every bucket, in bucket order.
    "true_positive_rate_parity": [(lambda y: y == 1, lambda p, y: p[:, 1])],
    "false_positive_rate_parity": [(lambda y: y == 0, lambda p, y: p[:, 0])],
    "equalized_odds": [
        (lambda y: y == 0, lambda p, y: p[:, 0]),
        (lambda y: y == 1, lambda p, y: p[:, 1]),
    ],
    "demographic_parity": [(lambda y: y >= 0, lambda p, y: p[:, 1])],
    "error_rate_parity": [
        (lambda y: y >= 0, lambda p, y: p.gather(1, y[:, None]).squeeze(1))
    ],
}


def reference_objective(
    logits, y, groups, row_weight, constraint, multipliers, surrogate
):
    """Weighted CE plus multiplied |rate_g - pooled| sums, written out."""
    proba = torch.softmax(logits, dim=1)
    if surrogate == "log_rate":
        proba = torch.log(proba)
    losses = nn.functional.cross_entropy(logits, y, reduction="none")
    total = (row_weight * losses).sum() / row_weight.sum()
    for multiplier, (rows_of, value_of) in zip(multipliers, BUCKETS[constraint]):
        rows = rows_of(y)
        values, weight = value_of(proba, y)[rows], row_weight[rows]
        pooled = (values * weight).sum() / weight.sum()
        for g in groups.unique():
            member = groups[rows] == g
            rate = (values[member] * weight[member]).sum() / weight[member].sum()
            total = total + multiplier * (rate - pooled).abs()
    return total


def make_problem(seed, n_train=10, n_val=24):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n_train, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(2, (n_train,), generator=gen)
    X_val = torch.randn(n_val, 5, generator=gen, dtype=torch.float64)
    y_val = torch.arange(n_val) % 2
    groups = (torch.arange(n_val) // 2) % 3
    stratum_weight = torch.rand(6, generator=gen, dtype=torch.float64) + 0.5
    w = torch.randn(n_train, generator=gen, dtype=torch.float64)
    return X, y, X_val, y_val, groups, stratum_weight, w


def lookahead_objective(module, w, problem, constraint, multipliers, surrogate):
    """``L_f`` after the lookahead on softmax(w)-weighted losses, written out."""
    X, y, X_val, y_val, groups, stratum_weight, _ = problem
    ahead = lookahead(module, w, X, y)
    logits = functional_call(module, ahead, (X_val,))
    row_weight = stratum_weight[groups * 2 + y_val]
    return reference_objective(
        logits, y_val, groups, row_weight, constraint, multipliers, surrogate
    )


def engine_weight_gradient(
    engine, module, problem, constraint, multiplier, lift=0.0, surrogate="log_rate"
):
    X, y, X_val, y_val, groups, stratum_weight, w = problem
    objective = ConstrainedObjective(
        make_constraint(constraint),
        moment_spec(constraint, n_groups=3),
        stratum_weight,
        per_row_loss,
        multiplier,
        worst_group_lift=lift,
        surrogate=surrogate,
    )
    validation = (X_val, y_val, groups * 2 + y_val)
    p = torch.softmax(w, dim=0)
    run = run_engine(engine, module, X, y, LOOKAHEAD_LR, validation, objective)
    d, meta_loss = run.directional_derivatives(p)
    return closed_form_weight_gradient(p, d, LOOKAHEAD_LR), meta_loss


@pytest.mark.parametrize("engine", [*sorted(ENGINES), "multistep"])
@pytest.mark.parametrize("constraint", CONSTRAINTS)
@pytest.mark.parametrize("surrogate", ["log_rate", "rate"])
def test_weight_gradient_matches_finite_differences(engine, constraint, surrogate):
    module = make_mlp(0)
    problem = make_problem(1)
    multipliers = [2.0] * len(BUCKETS[constraint])
    w = problem[-1]

    def objective(w):
        return lookahead_objective(
            module, w, problem, constraint, multipliers, surrogate
        ).item()

    expected = torch.zeros_like(w)
    for j in range(len(w)):
        step = torch.zeros_like(w)
        step[j] = 1e-6
        expected[j] = (objective(w + step) - objective(w - step)) / 2e-6
    run = MultiStep(1) if engine == "multistep" else engine
    got, meta_loss = engine_weight_gradient(
        run, module, problem, constraint, 2.0, surrogate=surrogate
    )
    assert expected.abs().max() > 1e-6  # not vacuous
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    assert meta_loss.item() == pytest.approx(objective(w))


@pytest.mark.parametrize("engine", ["linear", "jvp"])
def test_lifted_weight_gradient_matches_the_unrolled_engine(engine):
    # The lift's stop-gradient has no finite-difference counterpart: autograd
    # through the lookahead (the unrolled engine) is the reference.
    module, problem = make_mlp(2), make_problem(3)
    expected, _ = engine_weight_gradient(
        "unrolled", module, problem, "equalized_odds", 1.5, lift=1.0
    )
    got, _ = engine_weight_gradient(
        engine, module, problem, "equalized_odds", 1.5, lift=1.0
    )
    without, _ = engine_weight_gradient(
        "unrolled", module, problem, "equalized_odds", 1.5, lift=0.0
    )
    assert not torch.allclose(expected, without)  # the lift changes the step
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-10)


# ------------------------------------------------------------- the multipliers


def test_multipliers_rise_under_violation_and_fall_once_met():
    spec = moment_spec("equalized_odds")
    objective = ConstrainedObjective(
        make_constraint("equalized_odds"), spec, torch.ones(4), per_row_loss, 3.0
    )
    objective.update_multipliers([0.2, 0.01], tolerance=0.05)
    assert objective.multipliers.tolist() == pytest.approx([6.0, 3.0 * 2**-0.8])
    for _ in range(40):
        objective.update_multipliers([0.2, 0.0], tolerance=0.05)
    assert objective.multipliers.tolist() == [MAX_MULTIPLIER, MIN_MULTIPLIER]
    objective.update_multipliers([0.05, 0.05], tolerance=0.05)  # met exactly
    assert objective.multipliers.tolist() == [MAX_MULTIPLIER, MIN_MULTIPLIER]


def _biased(n=1500, seed=0):
    X, y, s = make_biased_classification(n_samples=n, random_state=seed)[:3]
    return X, y, s


@pytest.mark.parametrize("tolerance", [1e-3, 0.05, 0.9])
def test_fit_moves_each_multiplier_with_its_own_gap(tolerance):
    X, y, s = _biased()
    clf = FORMLClassifier(tolerance=tolerance, max_epochs=6, random_state=0)
    history = clf.fit(X, y, sensitive_features=s).history_
    gaps = np.array(history[:, "valid_gaps"])  # FPR and TPR gaps
    multipliers = np.array([[3.0, 3.0], *history[:, "multipliers"]])
    assert gaps.shape == (6, 2)
    for before, gap, after in zip(multipliers[:-1], gaps, multipliers[1:]):
        step = 2.0 ** np.clip((gap - tolerance) / tolerance, -1, 1)
        expected = np.clip(before * step, MIN_MULTIPLIER, MAX_MULTIPLIER)
        # the history rounds to 4 decimals
        np.testing.assert_allclose(after, expected, rtol=1e-3, atol=1e-4)
    if tolerance == 0.9:  # every gap within: they fall toward 0
        assert (multipliers[-1] < 3.0).all()
    if tolerance == 1e-3:  # gaps above: they rise
        assert (multipliers[-1] > 3.0).any()


def test_without_a_tolerance_the_multipliers_stay():
    X, y, s = _biased(600)
    clf = FORMLClassifier(multiplier=2.5, max_epochs=3, random_state=0)
    history = clf.fit(X, y, sensitive_features=s).history_
    assert history[:, "multipliers"] == [[2.5, 2.5]] * 3


def test_the_tolerance_is_resolved_or_a_warning_says_how_many_rows():
    X, y, s = _biased(600)
    with pytest.warns(ToleranceResolutionWarning, match=r"\d+x as many monitored") as w:
        FORMLClassifier(tolerance=0.02, max_epochs=2, random_state=0).fit(
            X, y, sensitive_features=s
        )
    assert w[0].filename == __file__  # it points at the caller's fit
    assert w[0].message.standard_error > 0.01 and w[0].message.rows_factor > 1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ToleranceResolutionWarning)
        FORMLClassifier(tolerance=0.9, max_epochs=2, random_state=0).fit(
            X, y, sensitive_features=s
        )


# ------------------------------------------------ each constraint, its own gap


def _test_disparity(constraint, clf, X, y, s):
    groups = np.unique(s, return_inverse=True)[1]
    return make_constraint(constraint).disparity(y, clf.predict(X), groups)


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_each_constraint_lowers_its_own_disparity(constraint):
    # Two draws of the data: one draw's test disparity moves by a few points.
    before, after = [], []
    for seed in (1, 2):
        X, y, s = make_biased_classification(n_samples=5000, random_state=seed)[:3]
        test = slice(3000, None)
        X_tr, y_tr, s_tr = X[:3000], y[:3000], s[:3000]
        settings = dict(constraint=constraint, random_state=0)
        uniform = FORMLClassifier(meta_lr=0, **settings)
        forml = FORMLClassifier(**settings)
        for clf, out in ((uniform, before), (forml, after)):
            clf.fit(X_tr, y_tr, sensitive_features=s_tr)
            out.append(_test_disparity(constraint, clf, X[test], y[test], s[test]))
    assert np.mean(after) < 0.9 * np.mean(before), (before, after)


# ------------------------------------------- the paper's objectives, unchanged

# FORMLClassifier(max_epochs=4, batch_size=64, random_state=0) on
# make_biased_classification(n_samples=600, random_state=0), fitted with
# skforml 0.2.0 (commit 01cf733): sum of squared sample_weights_, the sum of
# the first three, and P(y=1) of the first five rows.
PAPER_0_2_0 = {
    ("mean_loss_discrepancy", "equalized_odds", None): (
        [481.792701, 3.029039],
        [0.264659, 0.498755, 0.39276, 0.4369, 0.364419],
    ),
    ("mean_loss_discrepancy", "equalized_odds", 0.05): (
        [486.151314, 3.035396],
        [0.26576, 0.476961, 0.420063, 0.444947, 0.424973],
    ),
    ("mean_loss_discrepancy", "demographic_parity", 0.05): (
        [526.144707, 3.470162],
        [0.290918, 0.55361, 0.415169, 0.475839, 0.372834],
    ),
    ("max_loss_discrepancy", "demographic_parity", None): (
        [482.739812, 3.091969],
        [0.2686, 0.505738, 0.397104, 0.438251, 0.366022],
    ),
    ("cross_entropy", "equalized_odds", 0.05): (
        [487.295906, 3.024216],
        [0.267303, 0.480326, 0.423344, 0.442773, 0.425038],
    ),
}


@pytest.mark.parametrize("setting", sorted(PAPER_0_2_0, key=str))
def test_the_papers_meta_losses_give_the_models_of_0_2_0(setting):
    meta_loss, constraint, tolerance = setting
    X, y, s = make_biased_classification(n_samples=600, random_state=0)[:3]
    clf = FORMLClassifier(
        max_epochs=4, batch_size=64, random_state=0, meta_loss=meta_loss,
        constraint=constraint, tolerance=tolerance, worst_group_lift=1.0,
    ).fit(X, y, sensitive_features=s)  # fmt: skip
    weights, proba = PAPER_0_2_0[setting]
    w = clf.sample_weights_
    assert [float((w**2).sum()), float(w[:3].sum())] == pytest.approx(weights, abs=1e-4)
    np.testing.assert_allclose(clf.predict_proba(X[:5])[:, 1], proba, atol=1e-5)


@pytest.mark.parametrize("tolerance", [0.02, 0.05, 0.1])
def test_the_selected_epoch_meets_the_tolerance_whenever_an_epoch_does(tolerance):
    X, y, s = _biased(800)
    clf = FORMLClassifier(
        constraint="true_positive_rate_parity", tolerance=tolerance, max_epochs=8,
        random_state=0,
    ).fit(X, y, sensitive_features=s)  # fmt: skip
    disparity = np.array(clf.history_[:, "valid_disparity"])
    candidates = disparity[clf.max_epochs // 4 - 1 :]  # after the warm-up
    selected = disparity[clf.best_epoch_ - 1]
    if (candidates <= tolerance).any():
        assert selected <= tolerance
        accuracy = np.array(clf.history_[:, "valid_acc"])[clf.max_epochs // 4 - 1 :]
        best = accuracy[candidates <= tolerance].max()
        assert clf.history_[clf.best_epoch_ - 1, "valid_acc"] == best
    else:
        assert selected == candidates.min()


def test_one_prediction_for_everyone_is_not_a_resolved_gap():
    # Every row predicted negative: no TPR gap, but 20 rows per group cannot
    # vouch for it (Agresti-Caffo: one hit and one miss added per group).
    y_true = np.tile([1, 0], 40)
    groups = np.repeat([0, 1], 40)
    spec = moment_spec("true_positive_rate_parity")
    gaps, errors = hard_rate_gaps(
        make_constraint("true_positive_rate_parity"), spec, y_true,
        np.zeros(80, dtype=int), spec.cells(groups * 2 + y_true), np.ones(80), 2,
    )  # fmt: skip
    assert gaps.tolist() == [0.0]
    p = 1 / 22  # (0 hits + 1) / (20 rows + 2)
    assert errors[0] == pytest.approx(np.sqrt(2 * p * (1 - p) / 22))
