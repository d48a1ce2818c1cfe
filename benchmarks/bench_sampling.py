"""Linear Gaussian SEM sampling: conceptid vs sempler 0.2.14, and vs the noise-drawing floor.

Model: an Erdos-Renyi DAG on d nodes (expected degree 3), random weights and variances. For the
observational context and one hard intervention, time drawing n samples:

- ``sempler``: ``sempler.LGANM(W, means, variances).sample(n, do_interventions=...)`` (the peer);
- ``conceptid f64`` / ``f32``: ``SEM.intervene(ctx).sample(n, rng, dtype=...)``;
- ``noise floor f64`` / ``f32``: ``rng.standard_normal((n, d))``, the least any sampler of this kind
  must do;
- ``conceptid f64 sfc64`` and ``noise floor f64 sfc64``: the same with numpy's SFC64 bit generator
  (``BenchmarkSpec(bit_generator="sfc64")``, ``conceptid simulate --bit-generator sfc64``), a
  faster stream than the default PCG64 (other data for the same seed, hence opt-in).

Each time is the best of ``--repeats`` rounds, the seven samplers interleaved in every round, all
in this one process. Printed ratios:
``speedup vs sempler`` (goal >= 2) and ``time / noise floor`` of the same precision and bit
generator (goal <= 1.2).

Run: ``.venv/bin/python benchmarks/bench_sampling.py [--d 50] [--n 100000]``
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _args import at_least, parser

from conceptid.simulations import Context, Hard, erdos_renyi, random_sem


def best_times(fns: dict, repeats: int) -> dict:
    """Best wall time of each callable, the callables interleaved in every round so that a slow
    phase of a shared machine hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = parser(__doc__)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    at_least(ap, a, ("d",), minimum=4)  # the graph's expected degree 3 needs 4 nodes
    at_least(ap, a, ("n", "repeats"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sempler warns that its optional rpy2 extra is missing
        import sempler

    rng = np.random.default_rng(0)
    fast = np.random.Generator(np.random.SFC64(0))
    graph = erdos_renyi(a.d, 3.0, rng)
    sem = random_sem(graph, rng, noise_mean_scale=1.0)
    variances = np.array([S[0, 0] for S in sem.noise_cov])
    peer = sempler.LGANM(sem.weights.T, sem.noise_mean, variances)
    target = graph.order[a.d // 2]
    contexts = {
        "observational": (Context.observational(), {}),
        f"do({graph.names[target]})": (Context((Hard(target, 1.5, 0.7),)), {target: (1.5, 0.7)}),
    }
    results = {}
    print(f"linear Gaussian SEM, d = {a.d} nodes, n = {a.n} samples, best of {a.repeats}")
    print(
        f"{'context':<16}{'sampler':<22}{'time [ms]':>10}{'Msamples/s':>12}"
        f"{'vs sempler':>12}{'/ floor':>9}"
    )
    for label, (ctx, do) in contexts.items():
        isem = sem.intervene(ctx)
        t = best_times(
            {
                "sempler 0.2.14": lambda do=do: peer.sample(a.n, do_interventions=do),
                "conceptid f64": lambda s=isem: s.sample(a.n, rng),
                "conceptid f32": lambda s=isem: s.sample(a.n, rng, dtype=np.float32),
                "noise floor f64": lambda: rng.standard_normal((a.d, a.n)),
                "noise floor f32": lambda: rng.standard_normal((a.d, a.n), dtype=np.float32),
                "conceptid f64 sfc64": lambda s=isem: s.sample(a.n, fast),
                "noise floor f64 sfc64": lambda: fast.standard_normal((a.d, a.n)),
            },
            a.repeats,
        )
        for name, sec in t.items():
            speed = t["sempler 0.2.14"] / sec
            floor = ""
            if name.startswith("conceptid"):
                floor = f"{sec / t[name.replace('conceptid', 'noise floor')]:>9.2f}"
            print(
                f"{label:<16}{name:<22}{1e3 * sec:>10.1f}{a.n / sec / 1e6:>12.2f}{speed:>11.2f}x"
                + floor
            )
            results[(label, name)] = {"seconds": sec, "speedup_vs_sempler": speed}
    print("goals: conceptid >= 2x sempler; conceptid time <= 1.2x the noise floor of its stream")
    return results


if __name__ == "__main__":
    main()
