"""Speed-up of a sweep on 2 local Dask workers against 1, measured in the same run.

The same fixed sweep (the L1 rung, 500 training samples per context, the latent-flow MLE for a
fixed number of epochs, ``--cells`` seeds) runs twice into fresh directories: once on a
LocalCluster of one worker, once on two (one torch thread each). Prints both wall times
(cluster start-up included, and measured alone with a sweep of no-op cells) and the ratio; the
ideal on two free cores is 2x. Run it on a quiet machine (anything else on the cores changes the
ratio)::

    .venv/bin/python benchmarks/bench_sweep.py [--cells 4] [--epochs 10]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _args import at_least, parser

from conceptid.sweep import Sweep, run_sweep


def _sweep(cells: int, epochs: int, task: str = "conceptid.sweep:fit_cell") -> Sweep:
    spec = {"preset": "random", "n_train": 500, "n_val": 200, "n_test": 500,
            "preset_args": {"m": 5, "p": 16, "mixing": "linear"}}  # fmt: skip
    params = {"epochs": [epochs]} if task.endswith("fit_cell") else {"sleep": [0.0]}
    return Sweep.from_dict({"name": "speed-up", "benchmarks": [{"label": "L1", "spec": spec}],
                            "methods": ["latent-flow"], "params": params,
                            "seeds": list(range(cells)), "task": task})  # fmt: skip


def timed(sweep: Sweep, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_sweep(sweep, Path(tmp) / "s", workers=workers, progress=False)
        sec = time.perf_counter() - t0
    if not res.complete or res.ran != res.cells:
        raise SystemExit(f"the sweep did not run every cell: {res}")
    return sec


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=10)
    a = ap.parse_args(argv)
    at_least(ap, a, ("cells", "epochs"))
    empty = _sweep(a.cells, a.epochs, "conceptid.sweep:toy_cell")
    real = _sweep(a.cells, a.epochs)
    start = {w: timed(empty, w) for w in (1, 2)}
    wall = {w: timed(real, w) for w in (1, 2)}
    print(f"sweep of {a.cells} latent-flow fits (L1, 500 per context, {a.epochs} epochs), "
          f"LocalCluster, one torch thread per worker")  # fmt: skip
    for w in (1, 2):
        print(f"  {w} worker(s): {wall[w]:7.1f} s   (of which cluster start-up and no-op cells "
              f"{start[w]:.1f} s)")  # fmt: skip
    print(f"speed-up 2 vs 1 workers: {wall[1] / wall[2]:.2f}x (ideal on two free cores: 2x; "
          f"without start-up: {(wall[1] - start[1]) / (wall[2] - start[2]):.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
