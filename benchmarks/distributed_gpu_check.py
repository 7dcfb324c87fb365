"""A data-parallel fit on GPUs (nccl) against the one-GPU fit with the global batch.

Run once on one GPU, then under torchrun on two, comparing with the first::

    python benchmarks/distributed_gpu_check.py --out one.npz
    torchrun --nproc_per_node=2 benchmarks/distributed_gpu_check.py \\
        --out two.npz --compare one.npz

Prints the fit's rows per second and, with ``--compare``, the largest
difference of the parameters, weights and history (the CPU tests require
1e-5; cuDNN's convolutions may add their own nondeterminism). Used by
``run_gpu_checks.sh`` on a machine with two GPUs.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from test_distributed import fit, images, summary, tabular  # noqa: E402

GLOBAL_BATCH = {"mlp": 64, "small-cnn": 32}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--compare")
    parser.add_argument("--device", default="cuda", help="cpu for a smoke run")
    args = parser.parse_args()
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    results = {}
    for name, data in (("mlp", tabular()), ("small-cnn", images())):
        batch = GLOBAL_BATCH[name] // world_size
        start = time.perf_counter()
        clf = fit(data, batch, device=args.device, max_epochs=5)
        seconds = time.perf_counter() - start
        state = summary(clf)
        rows = 5 * int((~clf.validation_mask_).sum())
        if rank == 0:
            print(f"{name}: {world_size} process(es), {rows / seconds:.0f} rows/s")
        for key in ("params", "weights", "history"):
            results[f"{name}/{key}"] = np.asarray(state[key], dtype=float)
    if rank == 0:
        np.savez(args.out, **results)
        if args.compare:
            reference = np.load(args.compare)
            for key in sorted(results):
                gap = np.nanmax(np.abs(results[key] - reference[key]))
                print(f"{key}: largest difference to one GPU {gap:.1e}")


if __name__ == "__main__":
    main()
