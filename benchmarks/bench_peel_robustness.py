"""How robust is Theorem L's peeling (``identify_linear``) to a small nonlinear distortion?

The snaps of the latent-flow and manifold MLEs peel the moments of a learned latent that is the
concepts up to a linear map *and* a residual nonlinear distortion. This measures, on the ladder's
L3 concepts (the true ones, 2000 training samples per context), the per-concept R^2 of peeling
``Z = (C + a * g(C)) A`` with ``A`` a random linear mixing and two perturbations of the same
size ``a``: independent Gaussian noise (``g = sd(C) * N(0, 1)``) and a nonlinear distortion
(``g(C) = tanh(C W)``, ``W`` random ``5 x 5``, fixed seed); under the distortion, both the greedy
peel order of ``identify_linear`` and the likelihood-chosen one of ``identify_linear_ml``.

Run: ``.venv/bin/python benchmarks/bench_peel_robustness.py [--seeds 0,1,2]
[--sizes 0,0.03,0.1,0.2]``
"""

from __future__ import annotations

import numpy as np
from _args import float_list, int_list, parser
from bench_ladder import RUNGS

from conceptid.identifiability import Numeric, align, identify_linear, identify_linear_ml
from conceptid.models.data import from_dataset
from conceptid.simulations import BenchmarkSpec, generate


def peel_r2(C: np.ndarray, T: np.ndarray, Z: np.ndarray, ml: bool = False) -> np.ndarray:
    m = C.shape[1]
    rows = [~T.any(1)] + [T[:, j] for j in range(m)]
    moments = [(Z[r].mean(0), np.cov(Z[r].T)) for r in rows]
    targets = [None, *range(m)]
    if ml:
        ident = identify_linear_ml(moments, targets, [1] * m, [int(r.sum()) for r in rows])
    else:
        ident = identify_linear(moments, targets, [1] * m, Numeric())
    return align(Z @ ident.readout.T, C).r2


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sizes", default="0,0.03,0.1,0.2")
    a = ap.parse_args(argv)
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    sizes = float_list(ap, "--sizes", a.sizes)
    print("peeling the L3 concepts under a perturbation of size a, then a random linear mixing")
    heads = ("Gaussian noise, greedy order", "tanh(C W), greedy order")
    print(f"{'seed':<5}{'a':>5}  {heads[0]:<30}{heads[1]:<30}tanh(C W), likelihood order")
    for seed in seeds:
        spec = BenchmarkSpec(preset="random", preset_args={"m": 5, "p": 16, **RUNGS["L3"]},
                             n_train=2000, n_val=300, n_test=500, seed=seed)  # fmt: skip
        tr = from_dataset(generate(spec), "train", "training")
        C, T = tr.concepts.double().numpy(), tr.targets.numpy()
        for size in sizes:
            rng = np.random.default_rng(0)
            noise = C.std(0) * rng.standard_normal(C.shape)
            W, A = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
            gauss = peel_r2(C, T, (C + size * noise) @ A)
            Zw = (C + size * np.tanh(C @ W)) @ A
            warped, warped_ml = peel_r2(C, T, Zw), peel_r2(C, T, Zw, ml=True)
            cells = [" ".join(f"{v:.2f}" for v in r) for r in (gauss, warped, warped_ml)]
            print(f"{seed:<5}{size:>5.2f}  {cells[0]:<30}{cells[1]:<30}{cells[2]}")


if __name__ == "__main__":
    main()
