"""What a snap's two costly parts cost: the search over peel orders and the refit of the concepts
no context intervenes on.

The search: ``identify_linear_ml`` (steps 1-2 of Theorem L's
peeling done once, peeled prefixes shared between orders) against the plain search that calls
``identify_linear`` afresh for every order (the peer: what ``identify_linear_ml`` did before),
with the per-order scoring alone (``_gaussian_loglik`` of every order's identified model, which
any search over orders pays) as the floor. Both searches must return the same model bit for bit.

Data: the sample moments of ``m`` concepts (the ladder's linear rung, 2000 samples per context)
seen through a random linear map, as a snap sees the moments of its latent: a stand-in for quad's
snaps, which peel its six intervened concepts and so try the same orders (``m = 6``: all 720
and the greedy one); ``--max-exhaustive 1`` times the hill climb instead.

The refit (``models.unpeeled.fit_unpeeled``, 4 random starts of 400 Adam steps) runs its starts
side by side, one optimiser and one backward pass for all; the peer is the starts one after
another, timed as 4 times one start alone (``fit_unpeeled`` with ``restarts=1``; the results are
compared in ``tests/test_unpeeled.py``, not here). Data: the quad SEM's population moments (its two
never-intervened concepts in a snap's provisional basis), as on quad's snaps.

Run: ``.venv/bin/python benchmarks/bench_snap.py [--m 6] [--repeats 3]``
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch
from _args import at_least, parser

import conceptid.identifiability.linear as lin
from conceptid.identifiability import IdentificationError, Numeric, identify_linear
from conceptid.models.data import from_dataset
from conceptid.models.unpeeled import fit_unpeeled
from conceptid.simulations import BenchmarkSpec, generate, quad


def plain_search(moments, targets, ks, counts, max_exhaustive: int):
    """The peer: every order peeled afresh through the public ``identify_linear``; the same
    candidates, scores and tie rule as ``identify_linear_ml``. Also returns the identified
    model of every order tried (for the floor)."""
    white = lin._whitened(moments, targets.index(None))
    tried = []

    def score(order):
        try:
            ident = identify_linear(moments, targets, ks, Numeric(), peel_order=order)
        except (IdentificationError, np.linalg.LinAlgError):
            return None, -np.inf
        tried.append(ident)
        return ident, lin._gaussian_loglik(ident, white, targets, ks, counts)

    best, best_ll = score(None)
    m = len(ks)
    if m <= max_exhaustive:
        for order in itertools.permutations(range(m)):
            ident, ll = score(list(order))
            if ll > best_ll:
                best, best_ll = ident, ll
    elif best is not None:
        order, improved, seen = list(best.order), True, {}
        while improved:
            improved = False
            for i, j in itertools.permutations(range(m), 2):
                cand = order[:i] + order[i + 1 :]
                cand.insert(j, order[i])
                if tuple(cand) not in seen:
                    seen[tuple(cand)] = score(cand)
                ident, ll = seen[tuple(cand)]
                if ll > best_ll + 1e-9:
                    best, best_ll, order, improved = ident, ll, cand, True
    return best, tried


def quad_refit_input():
    """The quad SEM's population moments, ``color`` and ``shape`` in the provisional basis a snap
    gives them (their part uncorrelated with the peeled concepts): ``fit_unpeeled``'s input."""
    model = quad(mixing="identity")
    names = list(model.sem.names)
    U = [names.index("color"), names.index("shape")]
    P = [j for j in range(8) if j not in U]
    _, S0 = model.population_moments("obs")
    T = np.eye(8)
    T[np.ix_(U, P)] = -S0[np.ix_(U, P)] @ np.linalg.inv(S0[np.ix_(P, P)])
    moments, masks = [], []
    for ctx in model.contexts:
        mu, S = model.population_moments(ctx)
        moments.append((T @ mu, T @ S @ T.T))
        masks.append([n in ctx.targets for n in names])
    init = {"B": np.zeros((8, 8)), "mu_obs": moments[0][0], "var_obs": np.diag(moments[0][1]),
            "mu_int": np.zeros(8), "var_int": np.ones(8)}  # fmt: skip
    return moments, [2000] * len(moments), np.array(masks), U, init


def same_model(a, b) -> bool:
    """Every field of two identified models equal, bit for bit (both None counts as equal)."""
    if a is None or b is None:
        return a is b
    blocks = ("noise_cov", "intervention_mean", "intervention_cov")
    return (
        a.order == b.order
        and all(np.array_equal(getattr(a, f), getattr(b, f))
                for f in ("readout", "weights", "noise_mean"))
        and all(len(getattr(a, f)) == len(getattr(b, f))
                and all(np.array_equal(x, y) for x, y in zip(_values(getattr(a, f)),
                                                              _values(getattr(b, f))))
                for f in blocks)
        and np.array_equal(a.graph.adjacency, b.graph.adjacency)
        and a.method == b.method
    )  # fmt: skip


def _values(blocks):
    """A dict's values in key order, or a list as it is."""
    return [blocks[k] for k in sorted(blocks)] if isinstance(blocks, dict) else list(blocks)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--m", type=int, default=6, help="concepts (each with one context)")
    ap.add_argument("--max-exhaustive", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (the best is shown)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    at_least(ap, a, ("m", "repeats", "threads"))
    at_least(ap, a, ("max_exhaustive", "seed"), 0)
    if a.m > 16:
        ap.error(f"--m must be at most 16 (the concepts are seen in 16 dimensions), got {a.m}")
    if a.m <= a.max_exhaustive and a.m > 8:
        ap.error(
            f"--m {a.m} with --max-exhaustive {a.max_exhaustive} peels all {a.m}! orders; "
            "at most 8 concepts that way (use a smaller --max-exhaustive: the hill climb)"
        )
    torch.set_num_threads(a.threads)
    spec = BenchmarkSpec(preset="random", preset_args={"m": a.m, "p": 16, "mixing": "linear",
                                                       "nuisance_dim": 0},
                         n_train=2000, n_val=300, n_test=500, seed=a.seed)  # fmt: skip
    tr = from_dataset(generate(spec), "train", "training")
    C, T = tr.concepts.double().numpy(), tr.targets.numpy()
    Z = C @ np.random.default_rng(a.seed).standard_normal((a.m, a.m))
    rows = [~T.any(1)] + [T[:, j] for j in range(a.m)]
    moments = [(Z[r].mean(0), np.cov(Z[r].T)) for r in rows]
    targets, ks = [None, *range(a.m)], [1] * a.m
    counts = [int(r.sum()) for r in rows]

    def best_of(fn):
        times, out = [], None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_new, got = best_of(
        lambda: lin.identify_linear_ml(
            moments, targets, ks, counts, max_exhaustive=a.max_exhaustive
        )
    )
    t_peer, (want, tried) = best_of(
        lambda: plain_search(moments, targets, ks, counts, a.max_exhaustive)
    )
    white = lin._whitened(moments, 0)
    t_floor, _ = best_of(lambda: [lin._gaussian_loglik(i, white, targets, ks, counts)
                                  for i in tried])  # fmt: skip
    same = same_model(got, want)
    search = "every order" if a.m <= a.max_exhaustive else "hill climb"
    print(f"peel-order search, {a.m} concepts ({search}: {len(tried)} orders peeled), "
          f"best of {a.repeats}")  # fmt: skip
    print(f"{'plain search, identify_linear per order (peer)':<52}{t_peer:>8.3f} s")
    print(f"{'identify_linear_ml':<52}{t_new:>8.3f} s   {t_peer / t_new:.2f}x the peer")
    print(f"{'floor: scoring every order alone':<52}{t_floor:>8.3f} s")
    print(f"same model bit for bit: {same}")
    if not same:
        raise SystemExit("identify_linear_ml and the plain search disagree: a defect")

    moments, counts, masks, U, init = quad_refit_input()
    t_one, _ = best_of(lambda: fit_unpeeled(moments, counts, masks, [1] * 8, U, init,
                                            restarts=1))  # fmt: skip
    t_four, _ = best_of(lambda: fit_unpeeled(moments, counts, masks, [1] * 8, U, init,
                                             restarts=4))  # fmt: skip
    print(f"\nrefit of the never-intervened concepts (quad, 4 starts of 400 steps), "
          f"best of {a.repeats}")  # fmt: skip
    print(f"{'4 starts one after another (4 x one start alone; peer)':<56}{4 * t_one:>8.3f} s")
    print(
        f"{'4 starts side by side (fit_unpeeled)':<56}{t_four:>8.3f} s   "
        f"{4 * t_one / t_four:.2f}x the peer"
    )


if __name__ == "__main__":
    main()
