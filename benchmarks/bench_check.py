"""Identifiability check: time of the exact and numeric paths, each against a named naive peer.

- **exact**, a 5-concept model (Erdos-Renyi DAG, linear mixing, 2 nuisance dimensions):
  ``check(model, "exact", confirm=False)`` (the predicates; rank decisions by elimination over
  QQ, sympy ``DomainMatrix``) against the same predicates whose ranks are decided by *symbolic
  determinant expansion* (the largest non-vanishing minor, each determinant by cofactor
  expansion, sympy ``Matrix.det(method="laplace")``), the textbook definition of rank;
- **numeric**, a 50-concept model: ``check(model, "numeric")`` (float64, SVD ranks) against the
  same check in exact rational arithmetic.

Both peers run in a child process with a time limit; a peer that does not finish is reported as
a lower bound (``> limit``). Goals: exact 5-concept check under 2 s, numeric 50-concept check
under 1 s.

Run: ``.venv/bin/python benchmarks/bench_check.py [--limit 120]``
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import time

import numpy as np
from _args import at_least, parser

from conceptid.identifiability import check
from conceptid.identifiability.linalg import Exact
from conceptid.simulations import build_preset


class LaplaceExact(Exact):
    """Exact arithmetic whose rank is the size of the largest minor with a nonzero determinant,
    each determinant expanded by cofactors (exponential cost: the naive definition)."""

    description = "exact, ranks by cofactor expansion of minors (naive)"

    def rank(self, M, scale=None) -> int:
        from sympy import Matrix

        rows, cols = M.shape
        if rows == 0 or cols == 0:
            return 0
        S = Matrix(M.to_Matrix())
        for r in range(min(rows, cols), 0, -1):
            for ri in itertools.combinations(range(rows), r):
                for ci in itertools.combinations(range(cols), r):
                    if S.extract(list(ri), list(ci)).det(method="laplace") != 0:
                        return r
        return 0


def _model(m: int):
    return build_preset("random", np.random.default_rng(0), m=m, nuisance_dim=2 if m < 10 else 5,
                        expected_degree=2.0 if m < 10 else 3.0)  # fmt: skip


def _run(kind: str, m: int, queue) -> None:
    import importlib

    chk = importlib.import_module("conceptid.identifiability.check")  # the module, not the function

    model = _model(m)
    t0 = time.perf_counter()
    if kind == "laplace":
        original = chk.arithmetic
        chk.arithmetic = lambda method, rtol=1e-8: LaplaceExact()
        try:
            report = check(model, "exact", confirm=False)
        finally:
            chk.arithmetic = original
    elif kind == "exact-predicates":
        report = check(model, "exact", confirm=False)
    else:
        report = check(model, kind)
    queue.put((time.perf_counter() - t0, report.identifiable))


def timed(kind: str, m: int, limit: float) -> tuple[float, bool | None, bool]:
    """(seconds, identifiable, finished) of one check in a child process."""
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=_run, args=(kind, m, q))
    p.start()
    p.join(limit)
    if p.is_alive():
        p.terminate()
        p.join()
        return limit, None, False
    if p.exitcode != 0:  # it failed (its traceback is on stderr): nothing will come through q
        raise SystemExit(f"bench_check: the {kind} check of {m} concepts failed in its process "
                         f"(exit status {p.exitcode}); see the traceback above")  # fmt: skip
    sec, ok = q.get()
    return sec, ok, True


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--limit", type=float, default=120.0, help="seconds allowed to each peer")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    # a finite positive wait that multiprocessing's join takes (it overflows past about 2.1e6 s)
    if not 0 < a.limit <= 1e6:
        ap.error(f"--limit must be a number of seconds above 0 and at most 1e6, got {a.limit}")
    at_least(ap, a, ("repeats",))
    rows = []
    for label, m, ours, peer, peer_name in (
        # the peer decides the same predicates without the confirming identification run
        ("exact, 5 concepts", 5, "exact-predicates", "laplace", "determinant expansion"),
        ("numeric, 50 concepts", 50, "numeric", "exact", "exact rationals (QQ)"),
    ):
        best = min(timed(ours, m, a.limit)[0] for _ in range(a.repeats))
        sec, _, done = timed(peer, m, a.limit)
        rows.append((label, best, peer_name, sec, done))
    full = min(timed("exact", 5, a.limit)[0] for _ in range(a.repeats))
    print(f"{'check':<22}{'ours [s]':>10}  {'peer':<24}{'peer [s]':>10}{'speed-up':>11}")
    for label, best, peer_name, sec, done in rows:
        bound = "" if done else ">"
        ratio = f"{bound}{sec / best:.0f}x"
        print(f"{label:<22}{best:>10.3f}  {peer_name:<24}{bound + f'{sec:.2f}':>10}{ratio:>11}")
    print(f"full exact 5-concept check, with the confirming identification run: {full:.3f} s")
    print("goals: exact 5-concept check < 2 s; numeric 50-concept check < 1 s")


if __name__ == "__main__":
    main()
