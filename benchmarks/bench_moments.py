"""Exact population moments of a linear Gaussian SEM: conceptid vs sempler 0.2.14.

Model: an Erdos-Renyi DAG on d nodes (expected degree 3), random weights and variances, the
observational context. Times the exact mean and covariance:

- ``sempler``: ``sempler.LGANM(W, means, variances).sample(population=True)`` (the peer);
- ``conceptid``: ``SEM.population_moments()`` (one triangular solve in topological order for
  both; its per-SEM cache cleared before every call);
- ``two inverses``: ``inv(I - B)`` formed, then ``M mu`` and ``M S M^T`` (what conceptid did
  before, kept as the reference point).

Each time is the best of ``--repeats`` rounds, the three interleaved in every round. Goal:
conceptid >= 1x sempler at d = 1000.

Run: ``.venv/bin/python benchmarks/bench_moments.py [--d 200,1000] [--repeats 5]``
"""

from __future__ import annotations

import warnings

import numpy as np
from _args import at_least, int_list, parser
from bench_sampling import best_times

from conceptid.simulations import erdos_renyi, random_sem


def main(argv: list[str] | None = None) -> dict:
    ap = parser(__doc__)
    ap.add_argument("--d", default="200,1000")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    sizes = int_list(ap, "--d", a.d, minimum=4)  # the graph's expected degree 3 needs 4 nodes
    at_least(ap, a, ("repeats",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sempler warns that its optional rpy2 extra is missing
        import sempler

    print(f"exact population moments (mean and covariance), best of {a.repeats}")
    print(f"{'d':>6} {'method':<16}{'time [ms]':>11}{'vs sempler':>12}")
    results = {}
    for d in sizes:
        rng = np.random.default_rng(0)
        sem = random_sem(erdos_renyi(d, 3.0, rng), rng, noise_mean_scale=1.0)
        variances = np.array([S[0, 0] for S in sem.noise_cov])
        peer = sempler.LGANM(sem.weights.T, sem.noise_mean, variances)

        def ours(s=sem):
            s.__dict__.pop("_moments", None)
            return s.population_moments()

        def two_inverses(s=sem):
            M = np.linalg.inv(np.eye(s.K) - s.weights)
            return M @ s.noise_mean, M @ s.noise_cov_matrix() @ M.T

        fns = {"sempler 0.2.14": lambda p=peer: p.sample(population=True), "conceptid": ours,
               "two inverses": two_inverses}  # fmt: skip
        theirs = peer.sample(population=True)
        mean, cov = ours()
        assert np.allclose(mean, theirs.mean) and np.allclose(cov, theirs.covariance)
        t = best_times(fns, a.repeats)
        for name, sec in t.items():
            speed = t["sempler 0.2.14"] / sec
            print(f"{d:>6} {name:<16}{1e3 * sec:>10.2f}{speed:>11.2f}x")
            results[(d, name)] = {"seconds": sec, "speedup_vs_sempler": speed}
    ran = any(d == 1000 for d, _ in results)
    print("goal: conceptid >= 1x sempler at d = 1000" + ("" if ran else " (not run here)"))
    return results


if __name__ == "__main__":
    main()
