"""Certificate for Theorem L, uniqueness (proofs/lemma_linear_identification.md): the only
invertible linear maps between the concepts of two scalar models that preserve every context's
law are diagonal. A brute-force check by Groebner bases, independent of the peeling proof.

Setting. Model 1: scalar concepts, fixed rational parameters, every intervention changing the
variance. Model 2: unknown. For each topological order of model 2 the complete DAG in that
order is used with unknown edge weights (zeros allowed, so every DAG on the nodes is covered).
Unknowns: V (c = V c', i.e. c' = V^{-1} c), the weights B', the noise precisions tau', the
intervention precisions tau~', and z with z det V = 1 (V invertible). Equations: the precision
matrices of the contexts must match,

    V^T Theta_k V = Theta'_k,   k = 0 (observational) and do(j) for every j,

Theta'_0 = (I - B')^T diag(tau') (I - B'), Theta'_j the same with row j of B' zeroed and
tau'_j replaced by tau~'_j. Only the covariances are used; the means add equations, so the
conclusion holds a fortiori with them.

Normalisation. If (V, model 2) is a solution, so is (V L, model 2 rescaled) for every invertible
diagonal L: L Theta'_k L is the precision of the same DAG with I - B'' = L^{-1} (I - B') L and
tau'' = L^2 tau'. Hence a solution with V[i, j] != 0 exists iff one with V[i, j] = 1 exists.

Facts checked: for every off-diagonal position (i, j) and every order of model 2, the reduced
Groebner basis of the equations plus V[i, j] - 1 is [1]: no solution at all, even over the
complex numbers, so every solution has V (and W = V^{-1}) diagonal. Also: V = I and V = diag(2, -3)
(with the correspondingly rescaled model) do solve the equations, so the system is consistent and
the diagonal maps are exactly what remains (the class of Theorem L for scalar concepts).

m = 2: both model-1 graphs (empty, 0 -> 1). m = 3 (chain 0 -> 1 -> 2, all 6 orders of model 2)
takes about two minutes: run with --slow or CONCEPTID_SLOW_CERTS=1; it is not part of the default
test run.

falsify(): model 1 = 0 -> 1 without the intervention on concept 1 (A6 dropped): a non-diagonal
solution exists (witness N1), so some Groebner basis is not [1].

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import itertools
import os
import sys

import sympy as sp
from _common import run  # the certificates directory is on sys.path

R = sp.Rational


def _prec(B, tau):
    A = sp.eye(B.shape[0]) - B
    return (A.T * sp.diag(*tau) * A).applyfunc(sp.expand)


def _contexts(B, tau, taut, targets):
    out = [_prec(B, tau)]
    for k in targets:
        Bk = B.copy()
        Bk[k, :] = sp.zeros(1, B.shape[0])
        tk = list(tau)
        tk[k] = taut[k]
        out.append(_prec(Bk, tk))
    return out


def _system(P1, m, order, targets):
    V = sp.Matrix(m, m, sp.symbols(f"v0:{m * m}"))
    nb = m * (m - 1) // 2
    bs = sp.symbols(f"bp0:{nb}")
    tau = sp.symbols(f"tp0:{m}")
    taut = sp.symbols(f"tt0:{m}")
    z = sp.Symbol("z")
    B2 = sp.zeros(m, m)
    it = iter(bs)
    for i in range(m):
        for j in range(i):
            B2[order[i], order[j]] = next(it)
    P2 = _contexts(B2, tau, taut, targets)
    eqs = []
    for a, b in zip(P1, P2):
        D = (V.T * a * V - b).applyfunc(sp.expand)
        eqs += [D[i, j] for i in range(m) for j in range(i, m)]
    eqs.append(z * V.det() - 1)
    gens = list(V) + list(bs) + list(tau) + list(taut) + [z]
    return eqs, gens, V, (B2, tau, taut, z)


def _solves(eqs, subs):
    return all(sp.simplify(e.subs(subs)) == 0 for e in eqs)


def _check(name, B, tau, taut, targets):
    m = B.shape[0]
    P1 = _contexts(B, tau, taut, targets)
    facts = []
    for order in itertools.permutations(range(m)):
        eqs, gens, V, (B2, tp, tt, z) = _system(P1, m, order, targets)
        off_ok = True
        for i, j in itertools.product(range(m), repeat=2):
            if i != j:
                G = sp.groebner(eqs + [V[i, j] - 1], *gens, order="grevlex")
                off_ok &= list(G.exprs) == [1]
        facts.append(
            (f"{name}, model-2 order {order}: no solution with V[i, j] != 0 (i != j)", off_ok)
        )
        if all(order.index(c) > order.index(p) for p in range(m) for c in range(m) if B[c, p] != 0):
            for lam in ([1] * m, [2, -3, R(1, 2)][:m]):
                L = sp.diag(*lam)
                Bs = L.inv() * B * L  # rescaled model 1 written in model 2's order
                subs = {V[i, j]: L[i, j] for i in range(m) for j in range(m)}
                subs.update({tp[i]: lam[i] ** 2 * tau[i] for i in range(m)})
                subs.update({tt[i]: lam[i] ** 2 * taut[i] for i in range(m)})
                subs[z] = 1 / L.det()
                for i in range(m):
                    for jj in range(i):
                        sym = B2[order[i], order[jj]]
                        subs[sym] = Bs[order[i], order[jj]]
                facts.append(
                    (
                        f"{name}, order {order}: V = diag{tuple(lam)} solves the system",
                        _solves(eqs, subs),
                    )
                )
    return facts


def _checks(wrong: bool, slow: bool) -> list[tuple[str, bool]]:
    if wrong:  # A6 dropped for concept 1 of 0 -> 1: contexts 0 and do(0) only
        B = sp.Matrix([[0, 0], [R(3, 2), 0]])
        return _check("0->1 without do(1)", B, [1, R(1, 2)], [R(1, 3), 3], targets=[0])
    facts = []
    B = sp.Matrix([[0, 0], [R(3, 2), 0]])
    facts += _check("m=2, model 1: 0->1", B, [1, R(1, 2)], [R(1, 3), 3], targets=[0, 1])
    facts += _check(
        "m=2, model 1: empty", sp.zeros(2, 2), [1, R(1, 2)], [R(1, 3), 3], targets=[0, 1]
    )
    if slow:
        B3 = sp.zeros(3, 3)
        B3[1, 0], B3[2, 1] = R(3, 2), R(-2, 3)
        facts += _check(
            "m=3, model 1: chain", B3, [1, R(1, 2), 2], [R(1, 3), 3, R(1, 2)], targets=[0, 1, 2]
        )
    return facts


def _slow_default() -> bool:
    return os.environ.get("CONCEPTID_SLOW_CERTS", "") not in ("", "0")


def certify(slow: bool | None = None) -> list[tuple[str, bool]]:
    """All facts (m = 2; m = 3 too when slow); all must be True."""
    return _checks(False, _slow_default() if slow is None else slow)


def falsify() -> list[tuple[str, bool]]:
    """The same check without the intervention on concept 1 (A6 dropped); some must be False."""
    return _checks(True, False)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
