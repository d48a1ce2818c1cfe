"""Certificate for witness N2 (proofs/necessity.md): when A7 fails (the intervention on a childless
source j is the identity, noise mean 0) and there is a nuisance, concept j is not identifiable.

Model 1: concepts 0 -> 1 and an isolated concept 2 (= j) with eps_2 ~ N(0, sigma^2) and the
identity intervention eps~_2 ~ N(0, sigma^2); a 1-d nuisance n ~ N(0, tau^2) (A5).
Witness: rotate (c_2 / sigma, n / tau) by a fixed angle theta (written with t = tan(theta / 2),
cos theta = (1 - t^2) / (1 + t^2), sin theta = 2 t / (1 + t^2), so that every check is exact
rational-function arithmetic):
    c'_2 = sigma (cos theta c_2 / sigma - sin theta n / tau),
    n'   = tau   (sin theta c_2 / sigma + cos theta n / tau),
other concepts unchanged. This is a linear change of the embedding read-out T -> G T (G invertible),
so the mixing f is unchanged and the laws of x are equal iff the laws of (c, n) are.

Facts checked (t, sigma, tau and all SEM parameters symbolic): in context 0, do(0), do(1) and
do(2), the mean and covariance of G (c, n) equal those of (c, n); det G = 1; c'_2 is outside the
class, derived from the law: the residual variance of c'_2 given c_2 (context 0) is not zero.

falsify(): the same rotation when the intervention on concept 2 changes its variance (A7 holds):
the law in context do(2) changes.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import is_zero, law, residual_cov, run  # the certificates directory is on sys.path


def _checks(wrong: bool) -> list[tuple[str, bool]]:
    t = sp.Symbol("t")
    sig, tau = sp.symbols("sigma tau", positive=True)
    b10 = sp.Symbol("b10")
    mu0, mu1, mt0, mt1 = sp.symbols("mu0 mu1 mt0 mt1")
    s0, s1, st0, st1 = sp.symbols("s0 s1 st0 st1", positive=True)
    B = sp.zeros(3, 3)
    B[1, 0] = b10
    mu = sp.Matrix([mu0, mu1, 0])
    S = sp.diag(s0, s1, sig**2)
    st2 = 2 * sig**2 if wrong else sig**2  # identity intervention on concept 2 (A7 fails)
    contexts = {"context 0": (B, mu, S)}
    for k, (mt, st) in enumerate([(mt0, st0), (mt1, st1), (0, st2)]):
        Bk, muk, Sk = B.copy(), mu.copy(), S.copy()
        Bk[k, :] = sp.zeros(1, 3)
        muk[k], Sk[k, k] = mt, st
        contexts[f"context do({k})"] = (Bk, muk, Sk)
    c, s = (1 - t**2) / (1 + t**2), 2 * t / (1 + t**2)
    G = sp.eye(4)  # coordinates (c0, c1, c2, n)
    G[2, 2], G[2, 3] = c, -sig * s / tau
    G[3, 2], G[3, 3] = tau * s / sig, c
    facts = []
    for label, (Bk, muk, Sk) in contexts.items():
        m, C = law(Bk, muk, Sk)
        m = m.col_join(sp.Matrix([0]))
        C = sp.diag(C, tau**2)
        same = is_zero(G * m - m) and is_zero(G * C * G.T - C)
        facts.append((f"{label}: law of (c', n') equals law of (c, n)", same))
    facts.append(("G is invertible (det G = 1)", is_zero([G.det() - 1])))
    C0 = sp.diag(law(B, mu, S)[1], tau**2)
    facts.append(
        (
            "Var(c'_2 | c_2) != 0 in context 0: c'_2 depends on n, outside the class",
            not is_zero(residual_cov(G, C0, [2], [2])),
        )
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of witness N2; all must be True."""
    return _checks(False)


def falsify() -> list[tuple[str, bool]]:
    """The same rotation with an intervention that changes the variance; some must be False."""
    return _checks(True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
