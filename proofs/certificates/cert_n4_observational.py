"""Certificate for witness N4 (proofs/necessity.md): from the observational context alone neither
the concepts nor the graph are identifiable, already with linear mixing.

Model 1: scalar chain 0 -> 1 -> 2 with zero noise means, c ~ N(0, Sigma), Sigma = M S M^T,
M = (I - B)^{-1}, S = diag(1, 4, 9/4) (perfect squares so that L = M S^{1/2} is rational).
Witnesses (both are linear maps of the concepts, hence linear changes of the read-out C -> W C;
the mixing f and the nuisance are unchanged, so the law of x is unchanged iff the law of c is):
(a) c' = (I - B) c: Cov(c') = S is diagonal, i.e. c' follows the SEM with the EMPTY graph
    (c'_j = eps'_j, variances S): the graph is not identified;
(b) c'' = L R L^{-1} c with L L^T = Sigma (checked, not assumed) and R any orthogonal matrix:
    Cov(c'') = Sigma, the same SEM as model 1. R is the Cayley transform (I - K)(I + K)^{-1} of a
    symbolic skew-symmetric K (three free parameters, so every axis is moved; R R^T = I is
    checked exactly); c'' mixes the concepts, derived from the law: the residual variance of each
    c''_j given c_j is a non-zero rational function.

falsify(): (a) with I + B instead of I - B; (b) with a wrong factor L (L L^T != Sigma) and with a
non-orthogonal R; each must be rejected.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import cayley, is_zero, residual_cov, run  # the certificates dir is on sys.path

R = sp.Rational


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    B = sp.zeros(3, 3)
    B[1, 0], B[2, 1] = R(3, 2), -2
    S = sp.diag(1, 4, R(9, 4))
    M = (sp.eye(3) - B).inv()
    Sigma = M * S * M.T
    W = sp.eye(3) + B if wrong else sp.eye(3) - B
    Ca = W * Sigma * W.T
    facts = [
        (
            "(a) Cov((I - B) c) = S: the empty-graph SEM has the same observational law",
            Ca == S and Ca.is_diagonal(),
        )
    ]
    a, b, c = sp.symbols("a b c")
    Rm = cayley([[0, a, b], [-a, 0, c], [-b, -c, 0]])
    L = M * sp.diag(1, 2, R(3, 2))
    if wrong:
        L = M * sp.diag(1, 2, 1)  # a wrong factor: L L^T != Sigma
    facts.append(("(b) L L^T = Sigma", is_zero(L * L.T - Sigma)))
    facts.append(("(b) R R^T = I (R orthogonal for every a, b, c)", is_zero(Rm * Rm.T - sp.eye(3))))
    Wb = L * Rm * L.inv()
    facts.append(
        ("(b) Cov(L R L^-1 c) = Sigma for every a, b, c", is_zero(Wb * Sigma * Wb.T - Sigma))
    )
    Wn = L * (Rm + sp.diag(0, 0, a)) * L.inv()  # not orthogonal: must change the law
    facts.append(("(b) a non-orthogonal R changes the law", not is_zero(Wn * Sigma * Wn.T - Sigma)))
    mixed = all(not is_zero(residual_cov(Wb, Sigma, [j], [j])) for j in range(3))
    facts.append(("(b) every c''_j has Var(c''_j | c_j) != 0: outside the class", mixed))
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N4; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks with wrong maps; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
