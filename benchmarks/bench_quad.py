"""Rung L5 of the recovery ladder: the dependent quad scene at 32x32, against the pooled VAE.

For each seed: the quad benchmark (the paper's SEM and intervention parameters; 7 training
contexts, 15 held-out pairs), every method trained by the same trainer on the same data and
budget, then R^2 per concept up to the class, concept SWD (training contexts) and composition SWD
(held-out pairs, never seen in training), each against the pooled VAE measured in the same run.
Goal (models issue): composition SWD of the context module <= 0.6x the pooled VAE's (the paper
reports about 0.6x on its dependent quad data and 0.33x on its independent data).

Run: ``.venv/bin/python benchmarks/bench_quad.py [--seeds 0,1,2] [--epochs 20] [--n 500]
[--methods context-module,ablation,pooled,beta-vae] [--threads 2]``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _args import at_least, int_list, name_list, parser, vector_methods_on_images

from conceptid.pipeline import METHODS, ensure_data, evaluate_method, splits, train_method
from conceptid.simulations import BenchmarkSpec


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n", type=int, default=500, help="training images per context")
    ap.add_argument("--methods", default="context-module,ablation,pooled,beta-vae")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    at_least(ap, a, ("epochs", "n", "threads"))
    methods = name_list(ap, "--methods", a.methods, METHODS, "method")
    vector_methods_on_images(ap, methods, METHODS, "the quad scene is images")
    torch.set_num_threads(a.threads)
    rows: dict = {m: [] for m in methods}
    for seed in seeds:
        k = max(1, a.n // 5)
        spec = BenchmarkSpec(preset="quad", preset_args={"image_size": 32}, n_train=a.n,
                             n_val=k, n_test=k, seed=seed)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            ds = ensure_data(spec, out, progress=False)
            parts = splits(ds)
            for name in methods:
                t0 = time.perf_counter()
                model, _ = train_method(name, ds, out, seed=seed, epochs=a.epochs,
                                        progress=False, data_splits=parts)  # fmt: skip
                sec = time.perf_counter() - t0
                m = evaluate_method(name, model.eval(), ds, seed, data_splits=parts)
                m["seconds"] = sec
                rows[name].append(m)
                print(f"seed {seed} {name:<15} mean R2 {m['mean_r2']:.3f}  concept SWD "
                      f"{m['concept_swd']:.4f}  composition SWD {m['composition_swd']:.4f}  "
                      f"active {m['active_dims']}/{m['latent_dims']}  {sec:.0f} s",
                      flush=True)  # fmt: skip
    print(f"\nL5 quad 32x32, {a.n} training images per context, {a.epochs} epochs, seeds {seeds}, "
          f"{a.threads} torch threads")  # fmt: skip
    print(f"{'method':<32}{'mean R2':>8}{'concept SWD':>13}{'composition SWD':>17}"
          f"{'vs pooled':>11}{'time [s]':>10}")  # fmt: skip
    pooled = np.mean([m["composition_swd"] for m in rows.get("pooled", [])] or [np.nan])
    for name in methods:
        rs = rows[name]
        comp = np.mean([m["composition_swd"] for m in rs])
        print(f"{METHODS[name].label:<32}{np.mean([m['mean_r2'] for m in rs]):>8.3f}"
              f"{np.mean([m['concept_swd'] for m in rs]):>13.4f}{comp:>17.4f}"
              f"{comp / pooled:>10.2f}x{np.mean([m['seconds'] for m in rs]):>10.0f}")  # fmt: skip
    per = {n: " ".join(f"{v:.2f}" for v in np.mean([m["r2"] for m in rows[n]], 0)) for n in methods}
    concepts = "quad1 quad2 quad3 quad4 size color shape orientation"
    print(f"\nper-concept R2 (mean over seeds; {concepts}):")
    for name in methods:
        print(f"  {name:<15} {per[name]}")
    print("goal: composition SWD of the context module <= 0.6x the pooled VAE's")


if __name__ == "__main__":
    main()
