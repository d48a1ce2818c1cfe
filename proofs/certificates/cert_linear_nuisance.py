"""Certificate for Theorem L, step (i) (proofs/lemma_linear_identification.md): with linear mixing
the observed log-density ratio is the concept log-ratio read through the read-out, and the nuisance
cancels.

Setting. y = F (c, n) with F an invertible rational 4x4 matrix (so (c, n) = H y, H = F^{-1},
H_c = first K rows), n a 1-d nuisance independent of c with the same law N(mu_n, s_n) in every
context (A5). The law of y in each context is computed directly (mean F m, covariance F Sigma F^T)
and its homogeneous log-density form Psi^y_k is obtained by inverting that covariance.

Facts checked (exactly, nuisance parameters symbolic):
  Psi^y_k - Psi^y_0 = Hhat^T (Delta_k (+) 0_n) Hhat,   Hhat = [[H, 0], [0, 1]],
with Delta_k the concept form of Lemma 1 (without its log-det corner), and the log-det constant
det Cov_k(y) / det Cov_0(y) = det S~_k / det S_k (the Jacobian |det H| cancels). Examples: a
scalar chain with symbolic edge weights, and a scalar parent -> 2-d block model.

falsify(): the same with a nuisance whose variance differs between contexts (A5 violated).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import det, inv, law, run  # the certificates directory is on sys.path

R = sp.Rational
F = sp.Matrix([[2, -1, 0, 1], [1, 3, -2, 0], [0, 1, 1, -1], [R(1, 2), 0, 2, 3]])


def _is_zero(M):
    entries = [sp.sympify(x) for x in sp.Matrix(M)]
    syms = sorted(set().union(*(x.free_symbols for x in entries)), key=str)
    if not syms:
        return all(x == 0 for x in entries)
    field = sp.QQ.frac_field(*syms)
    return all(field.from_sympy(x) == field.zero for x in entries)


def _psi(mean, cov):
    theta = inv(cov)
    lin = -theta * mean
    return theta.row_join(lin).col_join(lin.T.row_join(mean.T * theta * mean))


def _delta(K, idx, B, mu, S, mu_t, S_t):
    E = sp.zeros(len(idx), K)
    for a, i in enumerate(idx):
        E[a, i] = 1
    A = E - B.extract(idx, list(range(K)))
    Eh, Ah = E.row_join(-mu_t), A.row_join(-mu.extract(idx, [0]))
    return Eh.T * inv(S_t) * Eh - Ah.T * inv(S.extract(idx, idx)) * Ah


def _run(name, B, mu, S, idx, mu_t, S_t, wrong):
    K = B.shape[0]
    mn = sp.Symbol("mn")
    sn = sp.Symbol("sn", positive=True)
    Bk, muk, Sk = B.copy(), mu.copy(), S.copy()
    for a, i in enumerate(idx):
        Bk[i, :] = sp.zeros(1, K)
        muk[i] = mu_t[a]
        for b, j in enumerate(idx):
            Sk[i, j] = S_t[a, b]
    m0, C0 = law(B, mu, S)
    mk, Ck = law(Bk, muk, Sk)
    sn_k = 3 * sn if wrong else sn
    y0 = (F * m0.col_join(sp.Matrix([mn])), F * sp.diag(C0, sn) * F.T)
    yk = (F * mk.col_join(sp.Matrix([mn])), F * sp.diag(Ck, sn_k) * F.T)
    lhs = _psi(*yk) - _psi(*y0)
    H = F.inv()
    Hhat = sp.diag(H, 1)
    D = _delta(K, idx, B, mu, S, mu_t, S_t)
    Dn = sp.zeros(K + 2, K + 2)  # coordinates (c, n, 1): zero row and column for n
    pos = list(range(K)) + [K + 1]
    for a, i in enumerate(pos):
        for b, j in enumerate(pos):
            Dn[i, j] = D[a, b]
    rhs = Hhat.T * Dn * Hhat
    const = det(yk[1]) / det(y0[1]) - det(S_t) / det(S.extract(idx, idx))
    return [
        (f"{name}: Psi^y_k - Psi^y_0 = Hhat^T (Delta_k (+) 0) Hhat", _is_zero(lhs - rhs)),
        (f"{name}: det Cov_k(y) / det Cov_0(y) = det S~_k / det S_k", _is_zero([const])),
    ]


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    b10, b21 = sp.symbols("b10 b21")
    B = sp.zeros(3, 3)
    B[1, 0], B[2, 1] = b10, b21
    mu = sp.Matrix([1, -2, R(1, 2)])
    S = sp.diag(2, 1, R(1, 3))
    facts = _run(
        "scalar chain, do(c_1)", B, mu, S, [1], sp.Matrix([3]), sp.Matrix([[R(1, 2)]]), wrong
    )
    Bb = sp.zeros(3, 3)
    Bb[1, 0], Bb[2, 0] = 2, -1
    Sb = sp.diag(1, sp.Matrix([[2, R(1, 2)], [R(1, 2), 1]]))
    facts += _run(
        "scalar -> 2-d block, do(block)",
        Bb,
        sp.Matrix([0, 1, -1]),
        Sb,
        [1, 2],
        sp.Matrix([1, 1]),
        sp.Matrix([[1, 0], [0, 3]]),
        wrong,
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of step (i) of Theorem L; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same checks with a context-dependent nuisance (A5 violated); some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
