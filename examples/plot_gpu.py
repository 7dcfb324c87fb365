"""
================
Running on a GPU
================

FORML trains on any device torch supports: pass ``device="cuda"``. This
example trains :class:`~skforml.SmallCNN` on digit images served by a torch
:class:`~torch.utils.data.Dataset` -- the way data that do not fit in memory
reach the estimator -- with loader workers (``num_workers``), pinned memory
and bfloat16 mixed precision (``precision="bfloat16"``), and compares the
time of an epoch with the CPU's.

**The body of this example runs only where a CUDA device is present.** The
documentation is built on a CPU, so the page you are reading shows the
message of the skipped run; run the script on a machine with a GPU to see
the numbers. ``benchmarks/bench_gpu.py`` is the fuller benchmark.

.. note::
   skforml's GPU path is tested on the CPU with fakes of CUDA tensors (what a
   pickle holds, that the training step never synchronises with the host);
   ``benchmarks/run_gpu_checks.sh`` runs the CUDA tests and the benchmark on
   a real device.
"""

# %%
# Is there a GPU?
# ---------------
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from skforml import FORMLClassifier, SmallCNN

cuda = torch.cuda.is_available()
if cuda:
    print("CUDA device:", torch.cuda.get_device_name(0))
else:
    print("No CUDA device: the rest of this example is skipped.")

# %%
# Images in a Dataset
# -------------------
# Items of a ``Dataset`` are ``x`` or ``(x, y)``; with ``(x, y)`` items and
# ``y=None`` in ``fit`` the labels are read from the data set (from its
# ``targets`` attribute when it has one, else in one pass). The digits are
# tiled with pixel noise to 20,000 images so that an epoch has work to do.
digits_X, digits_y = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
index = rng.randint(len(digits_y), size=20_000)
images = digits_X[index] / 16.0 + 0.05 * rng.normal(size=(len(index), 64))
images = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8)
labels = torch.tensor(digits_y[index])
dataset = TensorDataset(images, labels)
print(f"{len(dataset)} images of shape {tuple(images.shape[1:])}")


# %%
# FORML on the GPU and on the CPU
# -------------------------------
# ``num_workers`` loader processes prepare the batches; on CUDA they are
# pinned and copied without blocking. ``precision="bfloat16"`` runs the
# network's forward passes under :func:`torch.autocast`; the weights and the
# meta step's sums stay in float32.
def fit_and_time(device, precision):
    clf = FORMLClassifier(
        SmallCNN,
        module_params={"n_classes": 10},
        max_epochs=3,
        batch_size=256,
        device=device,
        num_workers=2,
        precision=precision,
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(dataset, None)
    seconds = time.perf_counter() - start
    per_epoch = np.median(clf.history_[1:, "dur"])
    return clf, seconds, per_epoch


if cuda:
    for device, precision in [
        ("cuda", "float32"),
        ("cuda", "bfloat16"),
        ("cpu", "float32"),
    ]:
        clf, seconds, per_epoch = fit_and_time(device, precision)
        print(
            f"{device:4s} {precision:8s}: fit {seconds:5.1f} s, "
            f"{per_epoch:.2f} s per epoch, "
            f"validation accuracy {clf.history_[-1, 'valid_acc']:.3f}"
        )
else:
    print("skipped: no CUDA device")

# %%
# A model fitted on the GPU predicts on the GPU; its pickle holds the
# weighting's tensors on the CPU, so it loads on a machine without one.
if cuda:
    import pickle

    restored = pickle.loads(pickle.dumps(clf))
    print("weights on:", type(restored.sample_weights_).__name__)
else:
    print("skipped: no CUDA device")
