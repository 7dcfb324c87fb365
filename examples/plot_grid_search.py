"""
=================================================================
Model selection: a Pipeline, GridSearchCV and a fairness refit
=================================================================

:class:`~skforml.FORMLClassifier` is a scikit-learn estimator, so it goes in
a :class:`~sklearn.pipeline.Pipeline` after the preprocessing and into
:class:`~sklearn.model_selection.GridSearchCV`. Two things need care:

1. **the sensitive features must reach FORML in every fold.** With
   scikit-learn's metadata routing enabled, ``set_fit_request(
   sensitive_features=True)`` asks for them and the search hands each fold
   its own rows' groups;
2. **the refit should pick for fairness as well as accuracy.**
   :func:`~skforml.metrics.make_fairness_scorer` scores a disparity with
   fairlearn's metric on each validation fold (the fold's sensitive features
   are routed to the scorer too), and
   :func:`~skforml.metrics.best_within_tolerance` refits the most accurate
   candidate whose mean disparity is within a tolerance.

The data are 2,000 training rows of the bundled UCI Adult census data, raw (strings
and counts), so that the preprocessing is fitted inside each fold.
"""

# %%
# Raw data and a pipeline
# -----------------------
# :func:`~skforml.datasets.make_adult_preprocessor` standardises the numbers
# and one-hot encodes the categories. The sensitive feature is ``sex``.
import pandas as pd
import sklearn
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline

from skforml import FORMLClassifier
from skforml.datasets import load_adult, make_adult_preprocessor
from skforml.metrics import best_within_tolerance, fairness_report, make_fairness_scorer

adult = load_adult(as_frame=True)
sex = adult.sensitive["sex"]
X_train, X_test, y_train, y_test, sex_train, sex_test = train_test_split(
    adult.data,
    adult.target,
    sex,
    train_size=2000,
    test_size=4000,
    stratify=sex + adult.target.astype(str),
    random_state=0,
)
print(f"{len(X_train)} training rows, {X_train.shape[1]} raw columns")

# %%
# Metadata routing is a global switch of scikit-learn; we turn it on for this
# example and off again at the end.
sklearn.set_config(enable_metadata_routing=True)

pipeline = make_pipeline(
    make_adult_preprocessor(),
    FORMLClassifier(
        constraint="true_positive_rate_parity", max_epochs=10, random_state=0
    ).set_fit_request(sensitive_features=True),
)

# %%
# The search
# ----------
# Each candidate is a FORML ``tolerance`` (None: no tolerance). The scorers
# report accuracy and the true-positive-rate difference (TPRD) of every
# validation fold; a scorer returns the *negated* disparity, so that greater
# is better as scikit-learn expects. The refit rule then takes the most
# accurate candidate whose mean TPRD over the folds is at most 0.05 (or the
# fairest one if none is).
search = GridSearchCV(
    pipeline,
    {"formlclassifier__tolerance": [0.05, None]},
    scoring={"accuracy": "accuracy", "tprd": make_fairness_scorer("tprd")},
    refit=best_within_tolerance(0.05, accuracy="accuracy", disparity="tprd"),
    cv=StratifiedKFold(2, shuffle=True, random_state=0),
)
search.fit(X_train, y_train, sensitive_features=sex_train)

table = pd.DataFrame(
    {
        "tolerance": search.cv_results_["param_formlclassifier__tolerance"],
        "cv accuracy": search.cv_results_["mean_test_accuracy"],
        "cv TPRD": -search.cv_results_["mean_test_tprd"],
    }
)
print(table.round(3))
print("chosen:", search.best_params_)

# %%
# The refitted pipeline on the test rows
# --------------------------------------
# The sensitive feature is only needed to fit; the chosen pipeline predicts
# from the features alone.
report = fairness_report(y_test, search.predict(X_test), sensitive_features=sex_test)
print(f"test accuracy {report.accuracy:.3f}, test TPRD {report.tprd:.3f}")

# %%
# A TPR gap measured on a few hundred positives per group is noisy (its
# standard error is a few points), so on small data the chosen tolerance is
# met on average rather than on every split. Turn routing off again:
sklearn.set_config(enable_metadata_routing=False)
