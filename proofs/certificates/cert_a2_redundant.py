"""Certificate for Lemma 2 (proofs/lemma_a2_redundant.md): A2 follows from A1 and A4.

Facts checked (all symbolic):
1. For a linear SEM over a DAG, M = (I - B)^{-1} has det M = 1, so
   det Cov_0(c) = det(M S M^T) = prod_j det S_j  (3 scalar nodes, complete DAG; and a 2-d block).
2. The same holds in every hard-intervention context (S_k replaced by S~_k, row k of B zeroed).
3. If the rows of C are linearly dependent, det(C Sigma_e C^T) = 0 identically, for every
   covariance Sigma_e of the embedding: so Cov(c) cannot be positive definite, contradicting 1.
4. The proof's route through a context do(k) needs A4 for the other blocks, which keep their
   noise: with S~_k > 0 but a singular S_j (j != k; A4's positive definiteness dropped)
   det Cov_k(c) = 0, so A6 alone does not carry fact 2. (This limits the route only: with the
   read-out T = [C; N] invertible, as the setting asks, rank C = K holds regardless.)

falsify(): the same identity for a cyclic B (a 2-cycle, not a DAG), and the determinant of a C
with independent rows; both must fail.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import det, inv, run  # the certificates directory is on sys.path


def _cov(B, S):
    M = inv(sp.eye(B.shape[0]) - B)
    return M * S * M.T


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    facts = []
    b10, b20, b21, b01 = sp.symbols("b10 b20 b21 b01")
    s = sp.symbols("s0:3", positive=True)
    st = sp.symbols("st0:3", positive=True)
    B = sp.Matrix([[0, 0, 0], [b10, 0, 0], [b20, b21, 0]])
    if wrong:  # a 2-cycle 0 <-> 1: not acyclic
        B[0, 1] = b01
    M = inv(sp.eye(3) - B)
    facts.append(("det (I - B)^{-1} = 1 (complete DAG on 3 nodes)", sp.cancel(det(M) - 1) == 0))
    d0 = det(_cov(B, sp.diag(*s)))
    facts.append(("det Cov_0(c) = s0 s1 s2", sp.cancel(d0 - s[0] * s[1] * s[2]) == 0))
    for k in range(3):
        Bk = B.copy()
        Bk[k, :] = sp.zeros(1, 3)
        Sk = list(s)
        Sk[k] = st[k]
        dk = det(_cov(Bk, sp.diag(*Sk)))
        target = sp.Mul(*Sk)
        facts.append(
            (f"det Cov_{k + 1}(c) = product of noise variances", sp.cancel(dk - target) == 0)
        )
    # a 2-d block (coordinates 1, 2) with a scalar parent 0
    a, h, g, b1, b2 = sp.symbols("a h g b1 b2")
    Bb = sp.Matrix([[0, 0, 0], [b1, 0, 0], [b2, 0, 0]])
    if wrong:
        Bb[0, 1] = b01
    Sb = sp.diag(s[0], sp.Matrix([[a, h], [h, g]]))
    db = det(_cov(Bb, Sb))
    facts.append(("block: det Cov_0(c) = s0 det S_1", sp.cancel(db - s[0] * (a * g - h**2)) == 0))
    # A6 without A4's positive definite noise: context do(0) of the complete DAG, s1 = 0
    B0 = B.copy()
    B0[0, :] = sp.zeros(1, 3)
    d_sing = det(_cov(B0, sp.diag(st[0], 0, s[2])))
    facts.append(
        (
            "context do(0), S~_0 > 0 but s1 = 0 (A4 dropped for block 1): det Cov(c) = 0",
            sp.cancel(d_sing) == 0,
        )
    )
    # dependent rows of C: det(C Sigma_e C^T) = 0 for every Sigma_e
    x = sp.symbols("x0:6")
    al, be = sp.symbols("alpha beta")
    r1 = sp.Matrix([[x[0], x[1], x[2]]])
    r2 = sp.Matrix([[x[3], x[4], x[5]]])
    r3 = sp.Matrix([[1, 2, 3]]) if wrong else al * r1 + be * r2
    C = r1.col_join(r2).col_join(r3)
    e = sp.symbols("e0:6")
    Se = sp.Matrix([[e[0], e[1], e[2]], [e[1], e[3], e[4]], [e[2], e[4], e[5]]])
    det3 = det(C * Se * C.T)
    facts.append(("dependent rows (d = 3): det(C Sigma_e C^T) = 0 identically", det3 == 0))
    # d = 4, symbolic Sigma_e (10 entries), rational C with row 3 = 2 row 1 - row 2
    f = sp.symbols("f0:10")
    idx = [[0, 1, 2, 3], [1, 4, 5, 6], [2, 5, 7, 8], [3, 6, 8, 9]]
    Se4 = sp.Matrix(4, 4, lambda i, j: f[idx[i][j]])
    C4 = sp.Matrix([[1, -2, 0, 3], [2, 1, -1, 0], [0, -5, 1, 6]])
    if wrong:
        C4[2, 3] = 7
    det4 = det(C4 * Se4 * C4.T)
    facts.append(("dependent rows (d = 4): det(C Sigma_e C^T) = 0 identically", det4 == 0))
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 2; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks with a cyclic B and independent rows of C; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
