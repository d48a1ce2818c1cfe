"""Certificate for witness N4 (proofs/necessity.md): from the observational context alone neither
the concepts nor the graph are identifiable, already with linear mixing.

Model 1: scalar chain 0 -> 1 -> 2 with zero noise means, c ~ N(0, Sigma), Sigma = M S M^T,
M = (I - B)^{-1}, S = diag(1, 4, 9/4) (perfect squares so that L = M S^{1/2} is rational).
Witnesses (both are linear maps of the concepts, hence linear changes of the read-out C -> W C;
the mixing f and the nuisance are unchanged, so the law of x is unchanged iff the law of c is):
(a) c' = (I - B) c: Cov(c') = S is diagonal, i.e. c' follows the SEM with the EMPTY graph
    (c'_j = eps'_j, variances S): the graph is not identified;
(b) c'' = L R(theta) L^{-1} c for a rotation R(theta) about any axis: Cov(c'') = Sigma, the same
    SEM as model 1, but c'' mixes the concepts (not per-concept affine) for generic theta.

falsify(): (a) with I + B instead of I - B; both claims must not hold then.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import run, trig_zero  # the certificates directory is on sys.path

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
    th = sp.Symbol("theta")
    Rt = sp.Matrix([[sp.cos(th), -sp.sin(th), 0], [sp.sin(th), sp.cos(th), 0], [0, 0, 1]])
    L = M * sp.diag(1, 2, R(3, 2))  # L L^T = Sigma
    Wb = L * Rt * L.inv()
    if wrong:
        Wb = L * sp.diag(1, 2, 1) * L.inv()  # not an orthogonal map of the whitened concepts
    facts.append(
        (
            "(b) Cov(L R(theta) L^-1 c) = Sigma for every theta",
            trig_zero(Wb * Sigma * Wb.T - Sigma, th),
        )
    )
    offdiag = any(sp.expand(Wb[i, j]) != 0 for i in range(3) for j in range(3) if i != j)
    facts.append(("(b) L R(theta) L^-1 is not diagonal (concepts mixed)", offdiag))
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
