"""Certificate for Lemma 4 (proofs/lemma_decoupling.md): a hard intervention decouples
non-descendants.

Claim. In context k (hard intervention on k), Cov_k(c_k, c_i) = 0 for every non-descendant i of k
(Gaussian: c_k is independent of c_nd(k)). The covariance is computed symbolically from
Cov_k(c) = M_k S_k M_k^T, M_k = (I - B_k)^{-1}, B_k = B with row k zeroed, for a chain, a fork,
a collider and a 4-node DAG with every weight and variance a free symbol. As a control, the
covariance with each proper descendant is checked to be a non-zero polynomial: the claim is
sharp.

falsify(): the claim "c_k is uncorrelated with every other concept" (descendants included) and
the claim for the observational context (k not intervened); both must fail somewhere.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import run  # the certificates directory is on sys.path

GRAPHS = {
    "chain 0->1->2": (3, [(0, 1), (1, 2)]),
    "fork 0<-1->2": (3, [(1, 0), (1, 2)]),
    "collider 0->2<-1": (3, [(0, 2), (1, 2)]),
    "4-node DAG 0->1, 0->2, 1->3, 2->3, 0->3": (4, [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)]),
}


def _descendants(n, edges, k):
    out, stack = set(), [k]
    while stack:
        u = stack.pop()
        for a, b in edges:
            if a == u and b not in out:
                out.add(b)
                stack.append(b)
    return out


def _cov(n, edges, k, observational):
    B = sp.zeros(n, n)
    for a, b in edges:
        B[b, a] = sp.Symbol(f"b{b}{a}")
    s = [sp.Symbol(f"s{j}", positive=True) for j in range(n)]
    if not observational:
        B[k, :] = sp.zeros(1, n)
        s[k] = sp.Symbol(f"st{k}", positive=True)
    M = (sp.eye(n) - B).inv()  # unit lower-triangular in a topological order: exact polynomials
    return (M * sp.diag(*s) * M.T).applyfunc(sp.expand)


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = []
    for name, (n, edges) in GRAPHS.items():
        for k in range(n):
            de = _descendants(n, edges, k)
            nd = [i for i in range(n) if i != k and i not in de]
            Ck = _cov(n, edges, k, observational=False)
            zero_nd = all(Ck[k, i] == 0 for i in nd)
            nonzero_de = all(Ck[k, i] != 0 for i in de)
            if wrong:  # wrong claims: also uncorrelated with descendants; or in context 0
                zero_nd = all(Ck[k, i] == 0 for i in range(n) if i != k)
                C0 = _cov(n, edges, k, observational=True)
                nonzero_de = all(C0[k, i] == 0 for i in nd)
            facts.append(
                (f"{name}, context do({k}): Cov(c_{k}, c_i) = 0 for non-descendants {nd}", zero_nd)
            )
            facts.append(
                (
                    f"{name}, context do({k}): Cov(c_{k}, c_i) != 0 for descendants {sorted(de)}",
                    nonzero_de,
                )
            )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 4; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks on wrong claims (descendants, observational context); some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
