"""Shared machinery of the paper-reproduction scripts (``benchmarks/repro_*.py``).

Each script runs its fits over seeds (in parallel with joblib, one torch
thread per worker), summarises every metric as mean ± standard error over
the seeds, and writes into its output folder:

``table.md`` / ``table.rst``
    The headline table (markdown for the terminal and the issue; a
    ``list-table`` for the docs' results page).
``verdict.rst``
    Sentences computed from the numbers: did the paper's direction of effect
    reproduce.
``runs.csv``
    One row per fit and seed, every metric: the raw material of the tables.
``plot.png``
    The experiment's figure.

``--smoke`` runs a tiny version in seconds (CI runs it); its outputs go to
``--out`` like the full run's, so a smoke run never overwrites the committed
results unless pointed at them.
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from skorch.callbacks import Callback

from skforml.metrics import fairness_report

RESULTS = Path(__file__).resolve().parent / "results"
# Metric columns, their headers and whether lower is better.
METRICS = {
    "accuracy": "Accuracy ↑",
    "tprd": "TPRD ↓",
    "max_fnr": "max FNR ↓",
    "fprd": "FPRD ↓",
    "max_fpr": "max FPR ↓",
}


def parser(name, description, seeds=5, n_jobs=2):
    """Command-line arguments common to every script."""
    args = argparse.ArgumentParser(prog=f"python benchmarks/repro_{name}.py")
    args.description = description
    args.add_argument("--smoke", action="store_true", help="tiny run (seconds), for CI")
    args.add_argument(
        "--out",
        type=Path,
        default=RESULTS / name,
        help=f"output folder (default benchmarks/results/{name})",
    )
    args.add_argument("--seeds", type=int, default=seeds, help="number of seeds")
    args.add_argument(
        "--n-jobs", type=int, default=n_jobs, help="parallel fits (joblib)"
    )
    args.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the tables, verdicts and plot from OUT/runs.csv; fit nothing",
    )
    return args


def get_runs(args, function, tasks):
    """The runs of ``tasks``, or those saved in ``runs.csv`` with --report-only."""
    if args.report_only:
        return pd.read_csv(Path(args.out) / "runs.csv")
    return run_tasks(function, tasks, args.n_jobs)


def quiet():
    """One torch thread per process and no library warnings in the output."""
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")


def _run_quietly(function, task):
    quiet()
    start = time.perf_counter()
    rows = function(*task)
    seconds = time.perf_counter() - start
    rows = rows if isinstance(rows, list) else [rows]
    # A task's time is shared by the rows it returns.
    return [{**row, "seconds": seconds / len(rows)} for row in rows]


def run_tasks(function, tasks, n_jobs):
    """``function(*task)`` for every task (a dict or list of dicts each) as a frame."""
    from joblib import Parallel, delayed

    if n_jobs == 1:
        results = [_run_quietly(function, task) for task in tasks]
    else:
        results = Parallel(n_jobs=n_jobs)(
            delayed(_run_quietly)(function, task) for task in tasks
        )
    return pd.DataFrame([row for rows in results for row in rows])


def metric_row(report):
    """The metrics of a :func:`skforml.metrics.fairness_report`, as a dict."""
    return {key: float(report[key]) for key in METRICS}


def summarize(runs, by, metrics):
    """Mean and standard error over seeds of ``metrics``, per ``by``."""
    grouped = runs.groupby(by, sort=False)[list(metrics)]
    mean = grouped.mean()
    count = grouped.count()
    sem = grouped.std(ddof=1) / np.sqrt(count)
    return mean, sem.fillna(0.0), count.iloc[:, 0]


def _cell(mean, sem, percent):
    scale = 100 if percent else 1
    return f"{scale * mean:.2f} ± {scale * sem:.2f}"


def table_rows(runs, by, metrics, percent=True):
    """Header and rows (strings) of a mean ± standard error table."""
    mean, sem, count = summarize(runs, by, metrics)
    by = [by] if isinstance(by, str) else list(by)
    header = [*by, *(METRICS.get(m, m) + (" (%)" if percent else "") for m in metrics)]
    rows = []
    for key in mean.index:
        key = key if isinstance(key, tuple) else (key,)
        cells = [str(k) for k in key]
        cells += [_cell(mean.loc[key, m], sem.loc[key, m], percent) for m in metrics]
        rows.append(cells)
    return header, rows, int(count.min())


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def list_table(header, rows, title=""):
    """An rst ``list-table`` of the same cells."""
    lines = [f".. list-table:: {title}".rstrip(), "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append("   * - " + row[0])
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines)


class Results:
    """Collects an experiment's tables, verdicts and notes and writes them."""

    def __init__(self, args, name):
        self.args, self.name = args, name
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.start = time.perf_counter()
        self.tables_md, self.tables_rst, self.verdicts = [], [], []

    def table(self, runs, by, metrics, title, percent=True):
        header, rows, n_seeds = table_rows(runs, by, metrics, percent)
        caption = f"{title} (mean ± standard error over {n_seeds} runs)"
        text = markdown(header, rows)
        print(f"\n{caption}\n\n{text}\n", flush=True)
        self.tables_md.append(f"**{caption}**\n\n{text}\n")
        self.tables_rst.append(list_table(header, rows, caption) + "\n")

    def verdict(self, sentence):
        print(sentence, flush=True)
        self.verdicts.append(sentence)

    def save(self, runs, figure=None):
        minutes = (time.perf_counter() - self.start) / 60
        timing = self.out / "minutes.txt"
        if self.args.report_only and timing.exists():
            minutes = float(timing.read_text())
        else:
            timing.write_text(f"{minutes:.2f}\n")
        mode = "smoke run" if self.args.smoke else "full run"
        footer = (
            f"*{mode}: {self.args.seeds} seeds, {minutes:.1f} minutes wall time, "
            f"{self.args.n_jobs} parallel fits; "
            f"`python benchmarks/repro_{self.name}.py`*"
        )
        (self.out / "table.md").write_text(
            "\n".join(self.tables_md) + "\n" + footer + "\n"
        )
        rst_footer = footer.replace("`", "``").strip("*")
        (self.out / "table.rst").write_text(
            "\n".join(self.tables_rst) + "\n" + rst_footer + "\n"
        )
        (self.out / "verdict.rst").write_text(
            "\n".join(f"- {v}" for v in self.verdicts) + "\n"
        )
        runs.to_csv(self.out / "runs.csv", index=False)
        if figure is not None:
            figure.savefig(self.out / "plot.png", dpi=110, bbox_inches="tight")
        print(f"{mode}: {minutes:.1f} min; results in {self.out}", flush=True)


def figure(n_panels, width=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, 3.4))
    return fig, np.atleast_1d(axes)


def bar_panels(runs, by, metrics, title):
    """One bar chart per metric: mean with standard-error bars per ``by``."""
    mean, sem, _ = summarize(runs, by, metrics)
    fig, axes = figure(len(metrics))
    labels = [str(k) for k in mean.index]
    for ax, metric in zip(axes, metrics):
        ax.bar(labels, mean[metric], yerr=sem[metric], capsize=3, color="C0")
        ax.set_title(METRICS.get(metric, metric))
        ax.tick_params(axis="x", rotation=60)
        low = float((mean[metric] - sem[metric]).min())
        high = float((mean[metric] + sem[metric]).max())
        if metric == "accuracy":
            ax.set_ylim(max(0.0, low - 0.05), min(1.0, high + 0.02))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare(results, name_a, a, name_b, b, metric, better, claim):
    """A verdict sentence: does ``a`` beat ``b`` on ``metric`` as the paper says.

    ``better`` is "lower" or "higher"; ``a`` and ``b`` are (mean, sem) pairs.
    The direction counts as reproduced when the means differ the right way;
    the sentence says whether the gap exceeds the combined standard error.
    """
    (ma, sa), (mb, sb) = a, b
    right_way = ma < mb if better == "lower" else ma > mb
    clear = abs(ma - mb) > np.hypot(sa, sb)
    verdict = "reproduced" if right_way else "not reproduced"
    strength = "beyond" if clear else "within"
    sentence = (
        f"{claim}: {name_a} {100 * ma:.2f} vs {name_b} {100 * mb:.2f} "
        f"({METRICS.get(metric, metric)}, %) -- **{verdict}** (difference "
        f"{strength} one combined standard error)."
    )
    results.verdict(sentence)
    return right_way


def stat(runs, mask, metric):
    values = runs.loc[mask, metric].to_numpy(dtype=float)
    sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(sem)


class EpochMetrics(Callback):
    """Records, after every epoch, the metrics of the net on a held-out set.

    With ``prefix="test"`` every metric of :data:`METRICS` goes into the
    history as ``test_<metric>``; with another prefix only the accuracy, as
    ``<prefix>_acc`` (a selection set). A script can then report the test
    metrics of the epoch a selection rule picks (the paper's "test accuracy
    at the highest validation accuracy").
    """

    def __init__(self, X, y, classes, prefix="test", sensitive_features=None):
        self.X = np.asarray(X, dtype=np.float32)
        self.y = np.asarray(y)
        self.classes = np.asarray(classes)
        self.prefix = prefix
        self.sensitive_features = sensitive_features

    def on_epoch_end(self, net, **kwargs):
        logits = net.forward(self.X, training=False)
        predicted = self.classes[logits.argmax(dim=1).cpu().numpy()]
        if self.prefix != "test":
            net.history.record(
                f"{self.prefix}_acc", float(np.mean(predicted == self.y))
            )
            return
        report = fairness_report(
            self.y, predicted, sensitive_features=self.sensitive_features
        )
        for key, value in metric_row(report).items():
            net.history.record(f"test_{key}", value)


def at_best_epoch(history, select_key):
    """Test metrics of the epoch of highest ``select_key`` (the first on ties)."""
    scores = [row.get(select_key, -np.inf) for row in history]
    best = int(np.argmax(scores))
    row = history[best]
    return {key: row[f"test_{key}"] for key in METRICS} | {"epoch": best + 1}


def stratified_rows(groups, y, n_rows, seed):
    """Training and test positions of ``n_rows = (n_train, n_test)`` rows.

    Stratified on (group, label), drawn afresh for every seed.
    """
    from sklearn.model_selection import train_test_split

    strata = np.char.add(np.asarray(groups, dtype=str), np.asarray(y).astype(str))
    return train_test_split(
        np.arange(len(y)),
        train_size=n_rows[0],
        test_size=n_rows[1],
        stratify=strata,
        random_state=seed,
    )
