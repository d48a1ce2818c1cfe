"""Certificate for witness N1 (proofs/necessity.md): without an intervention on concept j (A6
dropped for j), a concept j with a non-descendant i is not identifiable.

Witness. c'_j = c_j - alpha c_i (i a non-descendant of j), every other concept unchanged: c' = U c,
U = I - alpha e_j e_i^T. The second model keeps every noise law and every intervention law and
changes only the edge weights:
    B'_ji = B_ji - alpha,     B'_li = B_li + alpha B_lj  for every child l of j,
(new edges i -> j and i -> ch(j); the graph stays acyclic because i is not a descendant of j).

Facts checked (all parameters and alpha symbolic; two 3-node examples):
- B' is nilpotent (acyclic);
- in context 0 and in every context do(k), k != j: mean and covariance of U c under model 1 equal
  mean and covariance of c under model 2 (Gaussian, so the laws are equal; the mixing f and the
  nuisance are unchanged, so the laws of x are equal);
- in context do(j) the laws differ (alpha != 0): the missing context is exactly what would tell
  the models apart;
- c'_j = c_j - alpha c_i is not of the form a c_j + b (outside the class) for alpha != 0.

falsify(): the same with the wrong sign B'_li = B_li - alpha B_lj.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import law, run  # the certificates directory is on sys.path


def _ctx(B, mu, S, k, mt, st):
    if k is None:
        return law(B, mu, S)
    B2, mu2, S2 = B.copy(), mu.copy(), S.copy()
    B2[k, :] = sp.zeros(1, B.shape[0])
    mu2[k], S2[k, k] = mt[k], st[k]
    return law(B2, mu2, S2)


def _witness(name, edges, j, i, wrong):
    n = 3
    alpha = sp.Symbol("alpha")
    B = sp.zeros(n, n)
    for p, c in edges:
        B[c, p] = sp.Symbol(f"b{c}{p}")
    mu = sp.Matrix(sp.symbols(f"mu0:{n}"))
    S = sp.diag(*sp.symbols(f"s0:{n}", positive=True))
    mt = sp.symbols(f"mt0:{n}")
    st = sp.symbols(f"st0:{n}", positive=True)
    children = [c for p, c in edges if p == j]
    B2 = B.copy()
    B2[j, i] = B[j, i] - alpha
    for ell in children:
        B2[ell, i] = B[ell, i] + (-1 if wrong else 1) * alpha * B[ell, j]
    U = sp.eye(n)
    U[j, i] = -alpha
    facts = [(f"{name}: B' is acyclic (nilpotent)", (B2**n).applyfunc(sp.expand) == sp.zeros(n, n))]
    for k in [None] + [k for k in range(n) if k != j]:
        m1, C1 = _ctx(B, mu, S, k, mt, st)
        m2, C2 = _ctx(B2, mu, S, k, mt, st)
        same = (U * m1 - m2).applyfunc(sp.expand) == sp.zeros(n, 1)
        same &= (U * C1 * U.T - C2).applyfunc(sp.expand) == sp.zeros(n, n)
        label = "context 0" if k is None else f"context do({k})"
        facts.append((f"{name}: {label}: law of U c (model 1) = law of c (model 2)", same))
    m1, C1 = _ctx(B, mu, S, j, mt, st)
    m2, C2 = _ctx(B2, mu, S, j, mt, st)
    differ = (U * C1 * U.T - C2).applyfunc(sp.expand) != sp.zeros(n, n)
    facts.append((f"{name}: context do({j}) would distinguish the models", differ))
    facts.append((f"{name}: c'_{j} depends on c_{i} (outside the class)", U[j, i] != 0))
    return facts


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = _witness("chain 0->1->2, j=1, i=0 (a parent)", [(0, 1), (1, 2)], 1, 0, wrong)
    facts += _witness("collider 0->2<-1, j=0, i=1 (not adjacent)", [(0, 2), (1, 2)], 0, 1, wrong)
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N1; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same with a wrong sign in the children's new weights; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
