"""Certificate for Theorem L, steps 0-3 (proofs/lemma_linear_identification.md): the peeling
construction, run exactly, and a two-model check: a second model built from the class has the same
laws and peeling treats the two alike (this is not uniqueness: see proofs/README.md).

Each model is given by its SEM over concept blocks (one hard intervention per block), a 1-d
nuisance N(mn, sn) and its representation y = F (c, n) + y0 of d observed coordinates:
F = P A T^{-1} for a random rational read-out T = [C; N] and a random rational (d + 1) x d mixing
A, y = P x the first d coordinates of x with P A invertible. Linear models have y0 = 0; an
*affine* model has x = A e + a and (c, n) = T e + t0 (affine mixing and read-out), so
y0 = P a - F t0 != 0. The laws of y (mean and covariance per context) are computed from a model's
own parameters. From the laws of y ALONE (block sizes and targets known) the script runs the
construction of the proof in exact rational arithmetic:

  L_k = row space of [Q_k ; l_k^T], Q_k = Theta_k - Theta_0, l_k = Theta_k m_k - Theta_0 m_0
        (the linear parts of the row space of the observed log-ratio form);
  peeling: S = identified blocks; k is accepted iff dim(L_k + span h_S) = dim h_S + k_k;
           Z_k = {r in L_k : Cov_k(r y, h_s y) = 0 for all s in S};  h_k := basis of Z_k;
  regression of the recovered concepts h y in the peeling order (context 0) gives B, mu, S, and
  the law of h_k y in context k gives the intervention law.

One model (every example): (a) accepts k exactly when pa(k) is identified, at every step;
dim Z_k = k_k; the recovered read-out is h_k = D_k E_k H_c with D_k invertible (H_c: the true
read-out of c from y - y0); with the offsets o_k = h_k y0 of the recovered concepts
(h_k y = D_k c_k + o_k), the regression returns B^ = D B D^{-1} with the same block support (the
graph), mu^ = D mu + (I - B^) o, S^_k = D_k S_k D_k^T, and the intervention laws
(D_k mu~_k + o_k, D_k S~_k D_k^T).

Two models (every example): a second model is built with its own parameters: a random invertible
block-diagonal D2, offsets b2, a nuisance map n' = l n + o; its SEM B' = D2 B D2^{-1},
mu' = D2 mu + (I - B') b2, S'_k = D2_k S_k D2_k^T, intervention laws (D2_k mu~_k + b2_k,
D2_k S~_k D2_k^T), nuisance N(l mn + o, l^2 sn), representation F' = F G^{-1},
y0' = y0 - F G^{-1} g0 for (c', n') = G (c, n) + g0. Its laws of y are computed forward from these
parameters and must equal model 1's in every context (this checks the transformation rules of the
class). The construction is then run on each model's laws separately, and the argument of the
proof is checked: both runs accept the same blocks in the same order, at every step exactly the
blocks whose parents are identified in G *and* in G'; Z_k is the row space of E_k H_c and of
E_k H'_c; hence E_k H'_c = D_k E_k H_c with D_k = D2_k, and c'_k(y) - D_k c_k(y) is the constant
b2_k (offsets appear only through affine parts).

falsify(): the same one-model run on models that violate A7+ (the block of Lemma 3 / N6, and a
scalar model with an identity intervention on a source): the recovery must fail; and the two-model
check on the pair of N6 (model 2 = the rotation of necessity.md, N6, with rational angle): the
laws agree, but E_k H'_c is not D_k E_k H_c for any D_k, and the construction rejects the block.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import itertools
import random
import sys

import sympy as sp
from _common import run  # the certificates directory is on sys.path

R = sp.Rational


def _rand_matrix(rng, rows, cols):
    while True:
        M = sp.Matrix(rows, cols, lambda i, j: R(rng.randint(-5, 5), rng.randint(1, 3)))
        if M.rank() == min(rows, cols):
            return M


def _representation(rng, d, affine):
    """(F, y0) with y = F (c, n) + y0: y = P x, x = A e (+ a), (c, n) = T e (+ t0)."""
    T = _rand_matrix(rng, d, d)  # rows: C (K rows), then N
    A = _rand_matrix(rng, d + 1, d)
    # y = P x: the first d coordinates of x for which P A is invertible
    for rows in itertools.combinations(range(d + 1), d):
        G = A.extract(list(rows), list(range(d)))
        if G.det() != 0:
            break
    F = G * T.inv()
    y0 = sp.zeros(d, 1)
    if affine:
        a = sp.Matrix(d + 1, 1, lambda i, j: R(rng.randint(-5, 5), rng.randint(1, 3)))
        t0 = sp.Matrix(d, 1, lambda i, j: R(rng.randint(-5, 5), rng.randint(1, 3)))
        y0 = a.extract(list(rows), [0]) - F * t0
    return F, y0


def _laws(model, F, y0):
    """Laws of y = F (c, n) + y0 in every context, from the model's own parameters."""
    blocks, B, mu, S, interventions = (model[k] for k in ("blocks", "B", "mu", "S", "int"))
    mn, sn = model.get("nuisance", (R(1, 2), R(2)))
    K = B.shape[0]
    laws = {}
    for ctx in [None] + list(range(len(blocks))):
        Bk, muk, Sk = B.copy(), mu.copy(), S.copy()
        if ctx is not None:
            idx = blocks[ctx]
            mt, St = interventions[ctx]
            for a, i in enumerate(idx):
                Bk[i, :] = sp.zeros(1, K)
                muk[i] = mt[a]
                for b, j in enumerate(idx):
                    Sk[i, j] = St[a, b]
        M = (sp.eye(K) - Bk).inv()
        m, C = M * muk, M * Sk * M.T
        laws[ctx] = (F * m.col_join(sp.Matrix([mn])) + y0, F * sp.diag(C, sn) * F.T)
    return laws


def _readout(F, K):
    """H_c: the rows of F^{-1} that read c from y - y0."""
    return F.inv()[:K, :]


def _rowspace(M):
    rs = M.rowspace()
    return sp.Matrix.vstack(*rs) if rs else sp.zeros(0, M.shape[1])


def _peel(laws, sizes):
    """The construction of the proof, from the laws of y only. Returns (order, h, trace)."""
    m0, C0 = laws[None]
    T0 = C0.inv()
    L = {}
    for k in range(len(sizes)):
        mk, Ck = laws[k]
        Tk = Ck.inv()
        L[k] = _rowspace((Tk - T0).col_join((Tk * mk - T0 * m0).T))
    order, h, trace = [], {}, []
    while len(order) < len(sizes):
        hS = sp.Matrix.vstack(*[h[s] for s in order]) if order else sp.zeros(0, C0.shape[0])
        accepted = []
        for k in range(len(sizes)):
            if k in order:
                continue
            stacked = hS.col_join(L[k]) if hS.rows else L[k]
            if stacked.rank() == hS.rows + sizes[k]:
                accepted.append(k)
        trace.append((list(order), accepted))
        if not accepted:
            return order, h, trace
        k = accepted[0]
        if hS.rows:
            G = L[k] * laws[k][1] * hS.T  # constraints z^T G = 0
            ns = G.T.nullspace()
            Z = sp.Matrix.vstack(*[v.T for v in ns]) * L[k] if ns else sp.zeros(0, C0.shape[0])
        else:
            Z = L[k]
        if Z.rows != sizes[k]:
            return order, h, trace
        h[k] = Z
        order.append(k)
    return order, h, trace


def _regress(laws, h, order, blocks):
    """SEM of the recovered concepts (context 0) by regression in the peeling order."""
    m0, C0 = laws[None]
    out = {}
    for pos, k in enumerate(order):
        prev = order[:pos]
        mk, Ckk = h[k] * m0, h[k] * C0 * h[k].T
        if prev:
            hp = sp.Matrix.vstack(*[h[p] for p in prev])
            Bkp = h[k] * C0 * hp.T * (hp * C0 * hp.T).inv()
            out[k] = (Bkp, mk - Bkp * hp * m0, Ckk - Bkp * hp * C0 * h[k].T, prev)
        else:
            out[k] = (sp.zeros(len(blocks[k]), 0), mk, Ckk, prev)
    return out


def _parents(model):
    blocks, B = model["blocks"], model["B"]
    return {
        k: {
            p
            for p in range(len(blocks))
            if p != k
            and B.extract(blocks[k], blocks[p]) != sp.zeros(len(blocks[k]), len(blocks[p]))
        }
        for k in range(len(blocks))
    }


def _setup(model, seed):
    rng = random.Random(seed)
    K = model["B"].shape[0]
    F, y0 = _representation(rng, K + 1, model.get("affine", False))
    return F, y0, _laws(model, F, y0)


def _rows(M, idx):
    return M.extract(list(idx), list(range(M.cols)))


def _factor(h, E):
    """D with h = D E if one exists (E of full row rank), else None."""
    D = h * E.T * (E * E.T).inv()
    return D if h - D * E == sp.zeros(*h.shape) else None


def _check(name, model, seed):
    blocks = model["blocks"]
    sizes = [len(b) for b in blocks]
    F, y0, laws = _setup(model, seed)
    Hc = _readout(F, model["B"].shape[0])
    order, h, trace = _peel(laws, sizes)
    B = model["B"]
    parents = _parents(model)
    facts = []
    crit = all(
        set(acc) == {k for k in range(len(blocks)) if k not in S and parents[k] <= set(S)}
        for S, acc in trace
    )
    facts.append(
        (f"{name}: criterion accepts k exactly when pa(k) is identified, at every step", crit)
    )
    complete = len(order) == len(blocks)
    facts.append((f"{name}: every block is peeled, dim Z_k = k_k", complete))
    if not complete:
        return facts
    D, o = {}, {}
    ok = True
    for k in range(len(blocks)):
        Dk = _factor(h[k], _rows(Hc, blocks[k]))
        ok &= Dk is not None and Dk.det() != 0
        if not ok:
            break
        D[k], o[k] = Dk, h[k] * y0  # h_k y = D_k c_k + o_k
    facts.append((f"{name}: recovered read-out h_k = D_k E_k H_c, D_k invertible", ok))
    if not ok:
        return facts
    reg = _regress(laws, h, order, blocks)
    sem_ok, graph_ok, int_ok = True, True, True
    for k in range(len(blocks)):
        Bkp, muk, Sk, prev = reg[k]
        col = 0
        shift = o[k]  # the intercept is D_k mu_k + o_k - sum_p B^_kp o_p
        for p in prev:
            blk = Bkp[:, col : col + sizes[p]]
            col += sizes[p]
            true = D[k] * B.extract(blocks[k], blocks[p]) * D[p].inv()
            sem_ok &= blk == true
            graph_ok &= (blk != sp.zeros(*blk.shape)) == (p in parents[k])
            shift = shift - blk * o[p]
        sem_ok &= muk == D[k] * model["mu"].extract(blocks[k], [0]) + shift
        sem_ok &= Sk == D[k] * model["S"].extract(blocks[k], blocks[k]) * D[k].T
        mt, St = model["int"][k]
        mk_y, Ck_y = laws[k]
        int_ok &= h[k] * mk_y == D[k] * mt + o[k]
        int_ok &= h[k] * Ck_y * h[k].T == D[k] * St * D[k].T
    facts.append(
        (
            f"{name}: regression gives B^ = D B D^-1, mu^ = D mu + (I - B^) o, "
            "S^_k = D_k S_k D_k^T",
            sem_ok,
        )
    )
    facts.append((f"{name}: recovered graph (block support of B^) equals G", graph_ok))
    facts.append((f"{name}: recovered intervention laws (D_k mu~_k + o_k, D_k S~_k D_k^T)", int_ok))
    return facts


def _transform(model, D2, b2, scale, offset):
    """The second model (c', n') = (D2 c + b2, scale n + offset), by the rules of the class."""
    blocks, B, mu, S = model["blocks"], model["B"], model["mu"], model["S"]
    K = B.shape[0]
    B2 = D2 * B * D2.inv()
    mn, sn = model.get("nuisance", (R(1, 2), R(2)))
    ints = {}
    for k, (mt, St) in model["int"].items():
        Dk, bk = D2.extract(blocks[k], blocks[k]), b2.extract(blocks[k], [0])
        ints[k] = (Dk * mt + bk, Dk * St * Dk.T)
    return dict(
        blocks=blocks,
        B=B2,
        mu=D2 * mu + (sp.eye(K) - B2) * b2,
        S=D2 * S * D2.T,
        int=ints,
        nuisance=(scale * mn + offset, scale**2 * sn),
    )


def _pair(name, model, seed, rotation=None):
    """The two-model check (a second model from the class). rotation: a map G of (c, n) giving
    a second model with the same parameters (the N6 pair); otherwise a random member of the
    class."""
    blocks = model["blocks"]
    sizes = [len(b) for b in blocks]
    K = model["B"].shape[0]
    F, y0, laws1 = _setup(model, seed)
    rng = random.Random(1000 + seed)
    if rotation is None:
        D2 = sp.diag(*[_rand_matrix(rng, len(b), len(b)) for b in blocks])
        affine = model.get("affine", False)
        b2 = sp.Matrix(K, 1, lambda i, j: R(rng.randint(-4, 4), 2) if affine else 0)
        scale, offset = R(rng.choice([-3, -2, 2, 3]), 2), (R(1, 3) if affine else 0)
        model2 = _transform(model, D2, b2, scale, offset)
        G, g0 = sp.diag(D2, scale), b2.col_join(sp.Matrix([offset]))
    else:
        D2, b2, model2 = None, None, model
        G, g0 = rotation, sp.zeros(K + 1, 1)
    F2 = F * G.inv()
    y02 = y0 - F2 * g0
    laws2 = _laws(model2, F2, y02)
    facts = [
        (
            f"{name}, two models: the second model's own laws of y equal the first's, "
            "in every context",
            all(laws1[c][0] == laws2[c][0] and laws1[c][1] == laws2[c][1] for c in laws1),
        )
    ]
    run1, run2 = _peel(laws1, sizes), _peel(laws2, sizes)
    facts.append(
        (
            f"{name}, two models: both runs accept the same blocks in the same order",
            run1[0] == run2[0] and run1[2] == run2[2],
        )
    )
    order, h, trace = run1
    pa1, pa2 = _parents(model), _parents(model2)
    crit = all(
        set(acc)
        == {k for k in range(len(blocks)) if k not in S and pa1[k] <= set(S)}
        == {k for k in range(len(blocks)) if k not in S and pa2[k] <= set(S)}
        for S, acc in trace
    ) and len(order) == len(blocks)
    facts.append(
        (
            f"{name}, two models: every block accepted exactly when its parents in G and in G' "
            "are identified",
            crit,
        )
    )
    Hc, Hc2 = _readout(F, K), _readout(F2, K)
    if crit:
        same_space = all(
            _factor(h[k], _rows(Hc, blocks[k])) is not None
            and _factor(h[k], _rows(Hc2, blocks[k])) is not None
            for k in range(len(blocks))
        )
        facts.append(
            (f"{name}, two models: Z_k = rowspace(E_k H_c) = rowspace(E_k H'_c)", same_space)
        )
    conclusion, offsets = True, True
    for k in range(len(blocks)):
        E1, E2 = _rows(Hc, blocks[k]), _rows(Hc2, blocks[k])
        Dk = _factor(E2, E1)
        conclusion &= Dk is not None and Dk.det() != 0
        if Dk is not None and D2 is not None:
            conclusion &= Dk == D2.extract(blocks[k], blocks[k])
            # c'_k(y) - D_k c_k(y) = E2 (y - y0') - D_k E1 (y - y0): a constant, b2_k
            offsets &= -E2 * y02 + Dk * E1 * y0 == b2.extract(blocks[k], [0])
    facts.append((f"{name}, two models: E_k H'_c = D_k E_k H_c for every k", conclusion))
    if D2 is not None:
        facts.append((f"{name}, two models: c'_k(y) - D_k c_k(y) = b_k, a constant", offsets))
    return facts


def _scalar(edges, mu, s, ints):
    K = len(s)
    B = sp.zeros(K, K)
    for (p, c), w in edges.items():
        B[c, p] = w
    return dict(
        blocks=[[i] for i in range(K)],
        B=B,
        mu=sp.Matrix(mu),
        S=sp.diag(*s),
        int={k: (sp.Matrix([m]), sp.Matrix([[v]])) for k, (m, v) in ints.items()},
    )


MODELS = {
    "scalar chain 0->1->2": _scalar(
        {(0, 1): R(3, 2), (1, 2): -2},
        [1, 0, -1],
        [1, 2, R(1, 2)],
        {0: (2, 3), 1: (0, R(1, 3)), 2: (1, 2)},
    ),
    "scalar fork 0<-1->2, mean-only source intervention": _scalar(
        {(1, 0): 1, (1, 2): R(-1, 2)},
        [0, 1, 2],
        [2, 1, 1],
        {0: (1, 3), 1: (-1, 1), 2: (0, R(1, 2))},
    ),
    "scalar collider 0->2<-1, variance-only source intervention": _scalar(
        {(0, 2): 2, (1, 2): 1}, [1, -1, 0], [1, 1, 3], {0: (1, 4), 1: (2, R(1, 2)), 2: (0, 1)}
    ),
    "scalar parent -> 2-d block": dict(
        blocks=[[0], [1, 2]],
        B=sp.Matrix([[0, 0, 0], [2, 0, 0], [-1, 0, 0]]),
        mu=sp.Matrix([1, 0, 2]),
        S=sp.diag(1, sp.Matrix([[2, R(1, 2)], [R(1, 2), 1]])),
        int={
            0: (sp.Matrix([0]), sp.Matrix([[3]])),
            1: (sp.Matrix([1, -1]), sp.Matrix([[1, 0], [0, 3]])),
        },
    ),
    "2-d block -> 2-d block": dict(
        blocks=[[0, 1], [2, 3]],
        B=sp.Matrix([[0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 0, 0], [0, -1, 0, 0]]),
        mu=sp.Matrix([0, 1, -1, 2]),
        S=sp.diag(sp.Matrix([[1, R(1, 3)], [R(1, 3), 2]]), sp.Matrix([[1, 0], [0, R(1, 2)]])),
        int={
            0: (sp.Matrix([1, 0]), sp.Matrix([[2, 0], [0, 3]])),
            1: (sp.Matrix([0, 0]), sp.Matrix([[3, 1], [1, 1]])),
        },
    ),
    "scalar chain 0->1->2, affine mixing and read-out": dict(
        _scalar(
            {(0, 1): R(3, 2), (1, 2): -2},
            [1, 0, -1],
            [1, 2, R(1, 2)],
            {0: (2, 3), 1: (0, R(1, 3)), 2: (1, 2)},
        ),
        affine=True,
    ),
    "scalar parent -> 2-d block, affine mixing and read-out": dict(
        blocks=[[0], [1, 2]],
        B=sp.Matrix([[0, 0, 0], [2, 0, 0], [-1, 0, 0]]),
        mu=sp.Matrix([1, 0, 2]),
        S=sp.diag(1, sp.Matrix([[2, R(1, 2)], [R(1, 2), 1]])),
        int={
            0: (sp.Matrix([0]), sp.Matrix([[3]])),
            1: (sp.Matrix([1, -1]), sp.Matrix([[1, 0], [0, 3]])),
        },
        affine=True,
    ),
}

BAD_MODELS = {  # A7+ fails: the recovery must fail
    "N6 block (S~ = S = I, mu~ = mu = 0)": dict(
        blocks=[[0], [1, 2]],
        B=sp.Matrix([[0, 0, 0], [3, 0, 0], [4, 0, 0]]),
        mu=sp.Matrix([1, 0, 0]),
        S=sp.diag(2, 1, 1),
        int={0: (sp.Matrix([0]), sp.Matrix([[3]])), 1: (sp.Matrix([0, 0]), sp.eye(2))},
    ),
    "identity intervention on source 0 (A7 fails)": _scalar(
        {(0, 1): R(3, 2), (1, 2): -2},
        [1, 0, -1],
        [1, 2, R(1, 2)],
        {0: (1, 1), 1: (0, R(1, 3)), 2: (1, 2)},
    ),
}


def _n6_rotation():
    """The map G of (c_p, c_k1, c_k2, n) of witness N6 with tan(theta / 2) = 1/2, tau = 1."""
    co, si = R(3, 5), R(4, 5)
    w = sp.Matrix([R(4, 5), R(-3, 5)])
    G = sp.eye(4)
    G[1:3, 1:3] = sp.eye(2) + (co - 1) * w * w.T
    G[1:3, 3] = -w * si
    G[3, 1:3] = si * w.T
    G[3, 3] = co
    return G


def _checks(models, wrong: bool) -> list[tuple[str, bool]]:
    facts = []
    for seed, (name, model) in enumerate(models.items()):
        facts += _check(name, model, seed)
        if not wrong:
            facts += _pair(name, model, seed)
    if wrong:
        n6 = dict(BAD_MODELS["N6 block (S~ = S = I, mu~ = mu = 0)"], nuisance=(0, 1))
        facts += _pair("N6 pair (A7+ fails)", n6, 7, rotation=_n6_rotation())
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of the construction and of the two-model check; all must be True."""
    return _checks(MODELS, False)


def falsify() -> list[tuple[str, bool]]:
    """The same construction on models violating A7+, and the two-model check on the N6 pair;
    some facts must be False."""
    return _checks(BAD_MODELS, True)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
