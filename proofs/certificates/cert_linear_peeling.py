"""Certificate for Theorem L, steps (ii)-(iii) (proofs/lemma_linear_identification.md): the
peeling construction, run exactly.

For each example model (linear Gaussian SEM over concept blocks, one hard intervention per block,
a 1-d nuisance, a random rational embedding T = [C; N] and a random rational 5x4 mixing A), the laws
of the observation x = A e are computed in every context; y = P x keeps 4 coordinates with P A
invertible. From the laws of y ALONE (means and covariances per context, block sizes, targets) the
script then runs the construction of the proof in exact rational arithmetic:

  L_k = row space of [Q_k ; l_k^T], Q_k = Theta_k - Theta_0, l_k = Theta_k m_k - Theta_0 m_0
        (the linear parts of the row space of the observed log-ratio form);
  peeling: S = identified blocks; k is accepted iff dim(L_k + span h_S) = dim h_S + k_k;
           Z_k = {r in L_k : Cov_k(r y, h_s y) = 0 for all s in S};  h_k := basis of Z_k;
  regression of the recovered concepts h y in the peeling order (context 0) gives B, mu, S, and
  the law of h_k y in context k gives the intervention law.

Facts checked per example: the acceptance criterion accepts k exactly when pa(k) is identified (at
every step, for every k); dim Z_k = k_k; the recovered read-out is h_k = D_k E_k H_c with D_k
invertible (H_c: the true read-out of c from y); the recovered SEM is B^ = D B D^{-1} with the
same block support (graph), mu^ = D mu, S^_k = D_k S_k D_k^T; the recovered intervention law is
(D_k mu~_k, D_k S~_k D_k^T).

falsify(): the same run on models that violate A7+ (the block of Lemma 3 / N6, and a scalar model
with an identity intervention on a source): the recovery must fail.

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


def _model_laws(model, rng):
    """Laws of y in every context, and the true read-out H_c of c from y."""
    blocks, B, mu, S, interventions = (model[k] for k in ("blocks", "B", "mu", "S", "int"))
    K = B.shape[0]
    d = K + 1  # one nuisance coordinate
    mn, sn = R(1, 2), R(2)
    T = _rand_matrix(rng, d, d)  # rows: C (K rows), then N
    A = _rand_matrix(rng, d + 1, d)
    # y = P x: the first d coordinates of x for which P A is invertible
    for rows in itertools.combinations(range(d + 1), d):
        G = A.extract(list(rows), list(range(d)))
        if G.det() != 0:
            break
    F = G * T.inv()  # y = F (c, n)
    H = F.inv()  # (c, n) = H y
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
        laws[ctx] = (F * m.col_join(sp.Matrix([mn])), F * sp.diag(C, sn) * F.T)
    return laws, H[:K, :]


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


def _check(name, model, seed):
    rng = random.Random(seed)
    blocks = model["blocks"]
    sizes = [len(b) for b in blocks]
    laws, Hc = _model_laws(model, rng)
    order, h, trace = _peel(laws, sizes)
    B = model["B"]
    parents = {
        k: {
            p
            for p in range(len(blocks))
            if p != k and B.extract(blocks[k], blocks[p]) != sp.zeros(sizes[k], sizes[p])
        }
        for k in range(len(blocks))
    }
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
    D = {}
    ok = True
    for k in range(len(blocks)):
        Ek = Hc.extract(blocks[k], list(range(Hc.cols)))
        Dk = h[k] * Ek.T * (Ek * Ek.T).inv()
        D[k] = Dk
        ok &= (h[k] - Dk * Ek == sp.zeros(*h[k].shape)) and Dk.det() != 0
    facts.append((f"{name}: recovered read-out h_k = D_k E_k H_c, D_k invertible", ok))
    reg = _regress(laws, h, order, blocks)
    sem_ok, graph_ok, int_ok = True, True, True
    for k in range(len(blocks)):
        Bkp, muk, Sk, prev = reg[k]
        col = 0
        for p in prev:
            blk = Bkp[:, col : col + sizes[p]]
            col += sizes[p]
            true = D[k] * B.extract(blocks[k], blocks[p]) * D[p].inv()
            sem_ok &= blk == true
            graph_ok &= (blk != sp.zeros(*blk.shape)) == (p in parents[k])
        sem_ok &= muk == D[k] * model["mu"].extract(blocks[k], [0])
        sem_ok &= Sk == D[k] * model["S"].extract(blocks[k], blocks[k]) * D[k].T
        mt, St = model["int"][k]
        mk_y, Ck_y = laws[k]
        int_ok &= (h[k] * mk_y == D[k] * mt) and (h[k] * Ck_y * h[k].T == D[k] * St * D[k].T)
    facts.append(
        (f"{name}: regression gives B^ = D B D^-1, mu^ = D mu, S^_k = D_k S_k D_k^T", sem_ok)
    )
    facts.append((f"{name}: recovered graph (block support of B^) equals G", graph_ok))
    facts.append((f"{name}: recovered intervention laws (D_k mu~_k, D_k S~_k D_k^T)", int_ok))
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


def _checks(models) -> list[tuple[str, bool]]:
    facts = []
    for seed, (name, model) in enumerate(models.items()):
        facts += _check(name, model, seed)
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of the construction on the examples; all must be True."""
    return _checks(MODELS)


def falsify() -> list[tuple[str, bool]]:
    """The same construction on models violating A7+; some facts must be False."""
    return _checks(BAD_MODELS)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
