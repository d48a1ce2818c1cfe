"""Certificate for witness N6 (proofs/necessity.md): blocks with LINEAR mixing, A7 holds but A7+
fails, and the block is not identifiable: the block claim for linear mixing needs A7+.

Model: scalar source p (c_p ~ N(mu_p, s_p), intervention N(mu~_p, s~_p)) -> 2-d block k with no
children, B_kp = b = (3, 4)^T, S_k = S~_k = I, mu_k = mu~_k = 0 (the law of c_k given c_p changes
from N(b c_p, I) to N(0, I): A7 holds; rank T_k = 2 < 3: A7+ fails, Lemma 3); a 1-d nuisance
n ~ N(0, tau^2). w = (4, -3)/5 is a unit vector orthogonal to b.
Witness: z = w^T c_k is N(0, 1) and independent of everything else in every context; rotate
(z, n / tau) by theta (cos theta = (1 - t^2) / (1 + t^2), sin theta = 2 t / (1 + t^2), exact):
    c'_k = c_k + w (z' - z),  z' = cos theta z - sin theta n / tau,
    n' = tau (sin theta z + cos theta n / tau).
This is a linear map G of (c, n) (a change of the read-out T -> G T; the mixing stays linear).

Facts checked (t, tau and the parameters of p symbolic): in context 0, do(p) and do(k),
G maps the mean and covariance of (c_p, c_k, n) to themselves; det G = 1; c'_k is outside the class
c'_k = D_k c_k + b_k, derived from the law: the residual covariance of c'_k given c_k (context 0)
is not zero.

falsify(): the same map with w not orthogonal to b, and with a non-isotropic S_k.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import is_zero, law, residual_cov, run  # the certificates directory is on sys.path

R = sp.Rational


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    t = sp.Symbol("t")
    tau = sp.Symbol("tau", positive=True)
    mup, mtp = sp.symbols("mu_p mt_p")
    sp_, stp = sp.symbols("s_p st_p", positive=True)
    b = sp.Matrix([3, 4])
    w = sp.Matrix([1, 0]) if wrong else sp.Matrix([R(4, 5), R(-3, 5)])
    Sk = sp.diag(1, 2) if wrong else sp.eye(2)
    B = sp.zeros(3, 3)
    B[1, 0], B[2, 0] = b[0], b[1]
    mu = sp.Matrix([mup, 0, 0])
    S = sp.diag(sp_, Sk)
    ctx = {"context 0": (B, mu, S)}
    Bp, mup_, Sp = B.copy(), mu.copy(), S.copy()
    mup_[0], Sp[0, 0] = mtp, stp
    ctx["context do(p)"] = (Bp, mup_, Sp)
    Bk = B.copy()
    Bk[1, 0] = Bk[2, 0] = 0
    ctx["context do(k)"] = (Bk, mu, sp.diag(sp_, sp.eye(2)))  # S~_k = I, mu~_k = 0
    c, s = (1 - t**2) / (1 + t**2), 2 * t / (1 + t**2)
    # coordinates (c_p, c_k1, c_k2, n); z = w^T c_k
    G = sp.eye(4)
    Wk = w * w.T
    G[1:3, 1:3] = sp.eye(2) + (c - 1) * Wk  # c_k + w (cos(theta) z - z)
    G[1:3, 3] = -w * s / tau  # ... - w sin(theta) n / tau
    G[3, 1:3] = tau * s * w.T  # n' = tau sin(theta) z + cos(theta) n
    G[3, 3] = c
    facts = []
    for label, (Bx, mux, Sx) in ctx.items():
        m, C = law(Bx, mux, Sx)
        m = m.col_join(sp.Matrix([0]))
        C = sp.diag(C, tau**2)
        same = is_zero(G * m - m) and is_zero(G * C * G.T - C)
        facts.append((f"{label}: law of G (c, n) equals law of (c, n)", same))
    facts.append(("det G = 1", is_zero([G.det() - 1])))
    C0 = sp.diag(law(B, mu, S)[1], tau**2)
    facts.append(
        (
            "Cov(c'_k | c_k) != 0 in context 0: c'_k depends on n, outside the class",
            not is_zero(residual_cov(G, C0, [1, 2], [1, 2])),
        )
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N6; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same map with w not orthogonal to b and a non-isotropic block; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
