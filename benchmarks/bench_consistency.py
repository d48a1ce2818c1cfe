"""The consistency curve of recovery: per-concept R^2 up to the class as the data grow, as a sweep.

Rungs (the ladder's models, proofs/setting.md): L1 linear mixing, L2 linear + 2 nuisance dims,
L3 invertible MLP, L4 invertible MLP + 2 nuisance dims (5 concepts, Erdos-Renyi DAG, 16 observed
dims), and L3-10, L4-10 (10 concepts, 32 observed dims); on request also L3s and L4s, the MLP
with a smooth activation, where A3 holds (the leaky-ReLU MLP is not differentiable). Training
samples per context n = 500, 2000, 8000, 32000; 500 validation and 500 test samples per
context; seeds 0, 1, 2. The
latent-flow MLE (the theorem-matched estimator) against the pooled VAE, both with the same budget
in training-sample visits (``--sample-passes``, so a fit costs about the same at every n: fewer
epochs as n grows, at least 10).

Every fit is a cell of a :mod:`conceptid.sweep` sweep: finished cells are kept in ``--out`` and
skipped on a rerun, so the curve can be grown (more n, more seeds) or resumed after a kill.
Prints per rung, method and n: the mean R^2, the minimum per-concept R^2 over every concept and
seed, the NLL gap (validation NLL minus the true density's, nats), seconds per fit; then the cost
of one fit against n, K and the observation dimension. Writes the sweep's summary.csv,
summary.md and summary.png (R^2 against n, log scale).

Run (the whole curve: 144 fits, overnight on 2 cores; minutes on a cluster with
``--scheduler ADDRESS``)::

    .venv/bin/python benchmarks/bench_consistency.py --out runs/consistency

A smaller curve: ``--rungs L3,L4 --n 500,2000,8000 --seeds 0,1``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _args import at_least, int_list, name_list, parser

from conceptid.methods import METHODS
from conceptid.sweep import Sweep, SweepError, check_sweep_dir, run_sweep

RUNGS = {
    "L1": {"m": 5, "p": 16, "mixing": "linear", "nuisance_dim": 0},
    "L2": {"m": 5, "p": 16, "mixing": "linear", "nuisance_dim": 2},
    "L3": {"m": 5, "p": 16, "mixing": "mlp", "nuisance_dim": 0},
    "L4": {"m": 5, "p": 16, "mixing": "mlp", "nuisance_dim": 2},
    "L3-10": {"m": 10, "p": 32, "mixing": "mlp", "nuisance_dim": 0},
    "L4-10": {"m": 10, "p": 32, "mixing": "mlp", "nuisance_dim": 2},
}
# the same with a smooth activation: A3 holds (check answers identifiable*), where the
# leaky-ReLU MLP of L3 and L4 is not differentiable and check answers "not covered"
RUNGS |= {
    smooth: {**RUNGS[rung], "mixing_args": {"activation": "smooth"}}
    for smooth, rung in {"L3s": "L3", "L4s": "L4", "L3s-10": "L3-10", "L4s-10": "L4-10"}.items()
}
DEFAULT_RUNGS = ("L1", "L2", "L3", "L4", "L3-10", "L4-10")


def sweep_of(rungs, ns, seeds, methods, sample_passes, batch_size, restarts=1) -> Sweep:
    return Sweep.from_dict({
        "name": "consistency",
        "benchmarks": [{"label": r, "spec": {"preset": "random", "preset_args": RUNGS[r],
                                             "n_val": 500, "n_test": 500}} for r in rungs],
        "spec_grid": {"n_train": list(ns)},
        "methods": list(methods),
        "params": {"sample_passes": [sample_passes], "batch_size": [batch_size]}
        | ({"restarts": [restarts]} if restarts > 1 else {}),
        "seeds": list(seeds),
        "x": "n_train",
    })  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--out", default="runs/consistency", help="the sweep directory")
    ap.add_argument(
        "--rungs", default=",".join(DEFAULT_RUNGS), help=f"comma-separated, of {', '.join(RUNGS)}"
    )
    ap.add_argument("--n", default="500,2000,8000,32000", help="training samples per context")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="latent-flow,pooled")
    ap.add_argument(
        "--sample-passes",
        type=int,
        default=2_000_000,
        help="training-sample visits per fit (epochs = this / training rows, >= 10)",
    )
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument(
        "--restarts",
        type=int,
        default=1,
        help="fits per cell, the best kept by validation likelihood",
    )
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    a = ap.parse_args(argv)
    rungs = name_list(ap, "--rungs", a.rungs, RUNGS, "rung")
    ns = int_list(ap, "--n", a.n, minimum=1)
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    methods = name_list(ap, "--methods", a.methods, METHODS, "method")
    at_least(ap, a, ("sample_passes", "batch_size", "restarts", "workers"))
    try:  # read only: a file, or a directory neither empty nor a sweep's, is refused
        check_sweep_dir(a.out)
    except SweepError as e:
        ap.error(f"--out: {e}")
    try:  # the sweep's own checks: nothing repeated, every spec's model built (no training)
        sweep = sweep_of(rungs, ns, seeds, methods, a.sample_passes, a.batch_size, a.restarts)
    except SweepError as e:
        ap.error(str(e))
    try:
        res = run_sweep(sweep, a.out, scheduler=a.scheduler, workers=a.workers)
    except (SweepError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"consistency: {res.cells} fits ({res.skipped} reused, {res.ran} run, "
          f"{len(res.failed)} failed) in {res.seconds:.0f} s; {a.workers} workers, one torch "
          f"thread each; {a.sample_passes} sample visits per fit")  # fmt: skip
    table(res.rows)
    cost(res.rows)
    print(f"figure and tables: {Path(a.out) / 'summary.png'}, summary.md, summary.csv")
    return 0 if res.complete else 1


def _get(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def _fit_seconds(rows, **sel) -> dict | None:
    """The row of the training's time where the cells recorded it, else of the cells' own time
    (training and evaluation: a cell from before ``train_seconds`` existed)."""
    found = _get(rows, metric="train_seconds", **sel) or _get(rows, metric="seconds", **sel)
    return found[0] if found else None


def table(rows) -> None:
    print(f"{'rung':<7}{'method':<13}{'n':>7}{'mean R2':>9}{'min R2':>8}{'NLL gap':>9}"
          f"{'epochs':>7}{'s/fit':>7}  per-seed min R2")  # fmt: skip
    keys = sorted(
        {(r["benchmark"], r["method"], r["n_train"]) for r in rows},
        key=lambda k: (list(RUNGS).index(k[0]) if k[0] in RUNGS else 99, k[1], k[2]),
    )
    for rung, method, n in keys:
        sel = dict(benchmark=rung, method=method, n_train=n)
        mean = _get(rows, metric="mean_r2", **sel)
        low = _get(rows, metric="min_r2", **sel)
        gap = _get(rows, metric="nll_gap", **sel)
        ep = _get(rows, metric="epochs", **sel)
        sec = _fit_seconds(rows, **sel)
        if not mean:
            continue
        per = " ".join(f"{v:.3f}" for v in low[0]["per_seed"]) if low else ""
        worst = low[0]["min"] if low else float("nan")
        gap_text = f"{gap[0]['mean']:+.3f}" if gap else ""
        epochs = int(ep[0]["mean"]) if ep else 0
        print(f"{rung:<7}{method:<13}{n:>7}{mean[0]['mean']:>9.3f}{worst:>8.3f}{gap_text:>9}"
              f"{epochs:>7}{sec['mean']:>7.0f}  {per}")  # fmt: skip
    print("min R2: the smallest per-concept R^2 over every concept and seed")
    print(
        "goals: on L3 and L4 the min R2 rises with n and reaches >= 0.95 at n = 32000, the mean"
        " >= 0.98"
    )


def cost(rows) -> None:
    """Seconds of one fit (mean over seeds) against n, K and the observation dimension p."""
    keys = {(r["benchmark"], r["method"], r["n_train"]) for r in rows}
    sec = [s for b, m, n in keys if (s := _fit_seconds(rows, benchmark=b, method=m, n_train=n))]
    if not sec:
        return
    print("cost of one fit [s] (training time, mean over seeds; one torch thread):")
    ns = sorted({r["n_train"] for r in sec})
    print(
        f"{'method':<13}{'rung':<7}{'K':>3}{'p':>4}{'nuisance':>9}" + "".join(f"{n:>9}" for n in ns)
    )
    for method in sorted({r["method"] for r in sec}):
        for rung, args in RUNGS.items():
            vals = {r["n_train"]: r["mean"] for r in _get(sec, method=method, benchmark=rung)}
            if vals:
                cells = "".join(f"{vals[n]:>9.0f}" if n in vals else f"{'':>9}" for n in ns)
                print(
                    f"{method:<13}{rung:<7}{args['m']:>3}{args['p']:>4}"
                    f"{args['nuisance_dim']:>9}{cells}"
                )
    print(
        "(samples per fit: n per context x (K + 1) training contexts; the same visits budget, so"
        " growth with n is the cost of the larger data per epoch, not more visits)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
