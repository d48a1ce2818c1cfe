"""Certificate for Theorem L, uniqueness (proofs/lemma_linear_identification.md): the only
invertible linear maps between the concepts (and nuisance) of two scalar models that preserve every
context's law leave each concept a multiple of itself. A brute-force check by Groebner bases,
independent of the peeling proof.

Setting. Model 1: scalar concepts, fixed rational parameters, every intervention changing the
variance; optionally a 1-d nuisance n, independent of c, with the same precision in every context
(A5). Model 2: unknown. For each topological order of model 2 the complete DAG in that order is
used with unknown edge weights (zeros allowed, so every DAG on the nodes is covered). Unknowns: V
((c, n) = V (c', n')), the weights B', the noise precisions tau', the intervention precisions
tau~', the nuisance precision tn' (when there is a nuisance) and z with z det V = 1 (V invertible).
Equations: the precision matrices of the contexts must match,

    V^T Theta_k V = Theta'_k,   k = 0 (observational) and do(j) for every j,

Theta'_0 = (I - B')^T diag(tau') (I - B') (+) tn', Theta'_j the same with row j of B' zeroed and
tau'_j replaced by tau~'_j. Only the covariances are used; the means add equations, so the
conclusion holds a fortiori with them.

Normalisation. If (V, model 2) is a solution, so is (V L, model 2 rescaled) for every invertible
diagonal L: L Theta'_k L is the precision of the same DAG with I - B'' = L^{-1} (I - B') L,
tau'' = L^2 tau' and tn'' = l_n^2 tn'. Hence a solution with V[i, j] != 0 exists iff one with
V[i, j] = 1 exists.

What is checked. Without a nuisance: for every off-diagonal position (i, j) and every order of
model 2, the reduced Groebner basis of the equations plus V[i, j] - 1 is [1]: no solution at all,
even over the complex numbers, so V (and V^{-1}) is diagonal. With a nuisance (the real content of
Theorem L): the same for every position (i, j) with i a concept row and j != i, including the
nuisance column. Then V = [[D, 0], [r, l]] with D diagonal, so (c', n') = V^{-1} (c, n) has
c' = D^{-1} c: each concept is a multiple of itself and does not depend on n (the nuisance row r of
V is not constrained by the theorem). Also: V = I and V = diag(2, -3) (with the correspondingly
rescaled model) do solve the equations, so the system is consistent.

A7 must matter. With a nuisance, an identity intervention on a childless source (A7 fails) makes
uniqueness fail: the rotation of (c_0 sqrt(tau_0), n sqrt(tn)) by the rational angle
t = 1/2 (cos = 3/5, sin = 4/5) is an exact real solution with V[0, n] != 0 (certify), and the
Groebner check above is not [1] for that model (falsify).

m = 2: model-1 graphs empty and 0 -> 1, without and with a nuisance. m = 3 (chain 0 -> 1 -> 2,
all 6 orders of model 2, no nuisance) takes about two minutes: run with --slow or
CONCEPTID_SLOW_CERTS=1; it is not part of the default test run.

falsify(): (1) the identity intervention on source 0 of the empty graph with a nuisance (A7
fails); (2) model 1 = 0 -> 1 without the intervention on concept 1 (A6 dropped): a non-diagonal
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


def _prec(B, tau, tn=None):
    A = sp.eye(B.shape[0]) - B
    P = (A.T * sp.diag(*tau) * A).applyfunc(sp.expand)
    return P if tn is None else sp.diag(P, tn)


def _contexts(B, tau, taut, targets, tn=None):
    out = [_prec(B, tau, tn)]
    for k in targets:
        Bk = B.copy()
        Bk[k, :] = sp.zeros(1, B.shape[0])
        tk = list(tau)
        tk[k] = taut[k]
        out.append(_prec(Bk, tk, tn))
    return out


def _system(P1, m, order, targets, nuisance):
    q = m + (1 if nuisance else 0)
    V = sp.Matrix(q, q, sp.symbols(f"v0:{q * q}"))
    nb = m * (m - 1) // 2
    bs = sp.symbols(f"bp0:{nb}")
    tau = sp.symbols(f"tp0:{m}")
    taut = sp.symbols(f"tt0:{m}")
    tn = sp.Symbol("tn") if nuisance else None
    z = sp.Symbol("z")
    B2 = sp.zeros(m, m)
    it = iter(bs)
    for i in range(m):
        for j in range(i):
            B2[order[i], order[j]] = next(it)
    P2 = _contexts(B2, tau, taut, targets, tn)
    eqs = []
    for a, b in zip(P1, P2):
        D = (V.T * a * V - b).applyfunc(sp.expand)
        eqs += [D[i, j] for i in range(q) for j in range(i, q)]
    eqs.append(z * V.det() - 1)
    gens = list(V) + list(bs) + list(tau) + list(taut) + ([tn] if nuisance else []) + [z]
    return eqs, gens, V, (B2, tau, taut, tn, z)


def _solves(eqs, subs):
    return all(sp.simplify(e.subs(subs)) == 0 for e in eqs)


def _positions(m, nuisance):
    """Off-diagonal positions of V to test: all of them without a nuisance; with one, every
    concept row (the nuisance column first, where a failure shows soonest)."""
    if not nuisance:
        return [(i, j) for i in range(m) for j in range(m) if i != j]
    return [(i, m) for i in range(m)] + [(i, j) for i in range(m) for j in range(m) if i != j]


def _check(name, B, tau, taut, targets, tn=None, stop_early=False):
    m = B.shape[0]
    nuisance = tn is not None
    P1 = _contexts(B, tau, taut, targets, tn)
    facts = []
    for order in itertools.permutations(range(m)):
        eqs, gens, V, (B2, tp, tt, tnp, z) = _system(P1, m, order, targets, nuisance)
        off_ok = True
        for i, j in _positions(m, nuisance):
            G = sp.groebner(eqs + [V[i, j] - 1], *gens, order="grevlex")
            off_ok &= list(G.exprs) == [1]
            if stop_early and not off_ok:
                break
        rows = "i a concept, j != i" if nuisance else "i != j"
        facts.append(
            (f"{name}, model-2 order {order}: no solution with V[i, j] != 0 ({rows})", off_ok)
        )
        if stop_early and not off_ok:
            return facts
        if all(order.index(c) > order.index(p) for p in range(m) for c in range(m) if B[c, p] != 0):
            for lam in ([1] * m, [2, -3, R(1, 2)][:m]):
                L = sp.diag(*lam, *([R(1, 3)] if nuisance else []))
                Bs = sp.diag(*lam).inv() * B * sp.diag(*lam)  # rescaled model 1, model 2's order
                subs = {V[i, j]: L[i, j] for i in range(V.rows) for j in range(V.cols)}
                subs.update({tp[i]: lam[i] ** 2 * tau[i] for i in range(m)})
                subs.update({tt[i]: lam[i] ** 2 * taut[i] for i in range(m)})
                if nuisance:
                    subs[tnp] = L[m, m] ** 2 * tn
                subs[z] = 1 / L.det()
                for i in range(m):
                    for jj in range(i):
                        sym = B2[order[i], order[jj]]
                        subs[sym] = Bs[order[i], order[jj]]
                facts.append(
                    (
                        f"{name}, order {order}: V = diag{tuple(L.diagonal())} solves the system",
                        _solves(eqs, subs),
                    )
                )
    return facts


def _a7_rotation() -> list[tuple[str, bool]]:
    """Identity intervention on source 0 of the empty graph, with a nuisance: the rotation of the
    standardised (c_0, n) is an exact real solution with V[0, n] != 0."""
    tau, taut, tn = [4, R(1, 2)], [4, 3], R(1, 9)  # tau~_0 = tau_0: A7 fails for concept 0
    P1 = _contexts(sp.zeros(2, 2), tau, taut, [0, 1], tn)
    eqs, gens, V, (B2, tp, tt, tnp, z) = _system(P1, 2, (0, 1), [0, 1], True)
    co, si = R(3, 5), R(4, 5)  # cos and sin of the angle with tan(theta / 2) = 1/2
    # (c_0, n) = S^{-1} Rot S (c'_0, n'), S = diag(sqrt(tau_0), sqrt(tn)) = diag(2, 1/3)
    S = sp.diag(2, R(1, 3))
    block = S.inv() * sp.Matrix([[co, -si], [si, co]]) * S
    Vs = sp.Matrix([[block[0, 0], 0, block[0, 1]], [0, 1, 0], [block[1, 0], 0, block[1, 1]]])
    subs = {V[i, j]: Vs[i, j] for i in range(3) for j in range(3)}
    subs.update({B2[1, 0]: 0, tp[0]: tau[0], tp[1]: tau[1], tt[0]: taut[0], tt[1]: taut[1]})
    subs.update({tnp: tn, z: 1 / Vs.det()})
    return [
        (
            "A7 fails (identity intervention on a childless source) with a nuisance: the rotation "
            "of the standardised (c_0, n) is an exact solution with V[0, n] != 0",
            _solves(eqs, subs) and Vs[0, 2] != 0,
        )
    ]


def _checks(wrong: bool, slow: bool) -> list[tuple[str, bool]]:
    B = sp.Matrix([[0, 0], [R(3, 2), 0]])
    if wrong:
        facts = _check(  # A7 fails for concept 0: tau~_0 = tau_0
            "empty + nuisance, identity intervention on 0",
            sp.zeros(2, 2),
            [4, R(1, 2)],
            [4, 3],
            [0, 1],
            tn=R(1, 9),
            stop_early=True,
        )
        # A6 dropped for concept 1 of 0 -> 1: contexts 0 and do(0) only
        facts += _check("0->1 without do(1)", B, [1, R(1, 2)], [R(1, 3), 3], targets=[0])
        return facts
    facts = []
    facts += _check("m=2, model 1: 0->1", B, [1, R(1, 2)], [R(1, 3), 3], targets=[0, 1])
    facts += _check(
        "m=2, model 1: empty", sp.zeros(2, 2), [1, R(1, 2)], [R(1, 3), 3], targets=[0, 1]
    )
    facts += _check(
        "m=2 + nuisance, model 1: 0->1", B, [1, R(1, 2)], [R(1, 3), 3], [0, 1], tn=R(1, 4)
    )
    facts += _check(
        "m=2 + nuisance, model 1: empty",
        sp.zeros(2, 2),
        [1, R(1, 2)],
        [R(1, 3), 3],
        [0, 1],
        tn=R(1, 4),
    )
    facts += _a7_rotation()
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
    """All facts (m = 2 with and without a nuisance; m = 3 too when slow); all must be True."""
    return _checks(False, _slow_default() if slow is None else slow)


def falsify() -> list[tuple[str, bool]]:
    """The same check with A7 failing, and without the intervention on concept 1 (A6 dropped);
    some must be False."""
    return _checks(True, False)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
