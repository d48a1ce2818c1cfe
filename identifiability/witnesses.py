"""Counterexample builders: a second model whose observed laws equal the first's in every training
context while its concepts differ outside the equivalence class (proofs/necessity.md).

Every builder returns a :class:`Witness`; :meth:`Witness.verify` checks the claim from the two
models' *own* parameters (it recomputes both laws, it does not trust the construction), against
the user's model itself and in *every training context* of its design (``model.contexts``):

- linear witnesses (``model_b`` is a :class:`ConceptModel` with the same mixing ``f`` and read-out
  ``T_B = P T``): every training context's law is Gaussian in both models, the laws of the
  embedding ``e`` agree in every training context, exactly or numerically, hence so do the laws
  of ``x = f(e)`` for any ``f``; and ``C_B`` is not ``D C_A`` for any block-diagonal ``D``;
- the nuisance-dependent block rotation (N5): the transformation of ``(c, n)`` preserves every
  training context's density (checked at random points, with its Jacobian determinant) and is a
  bijection.

Held-out (composed) contexts are never observed, so they are not part of the claim: a witness
says that the *training* data cannot tell the two models apart. Whether the two models also
agree on the held-out contexts is reported beside it (``held_out_equal``), for information.

Builders:

- :func:`missing_intervention` (N1, A6 dropped for concept ``j``): with a non-descendant ``i``,
  ``c'_j = c_j - W c_i``; when ``j`` is the root of every other concept, a mixing of ``j`` with
  a child whose only parent is ``j`` (see the function);
- :func:`identity_intervention` (N2, A7 fails for a childless source ``j`` with zero noise mean,
  model with a nuisance): a reflection of ``(c_j, n_0)`` that preserves their joint law;
- :func:`observational_only` (N4, every training context observational): a shear of the
  concepts, the second SEM read off its LDL^T factorisation;
- :func:`no_observational_context` (N7, A0 fails): a law-preserving reflection of an isolated
  zero-mean concept with a nuisance coordinate, or a mixing of two concepts that every context
  intervenes on one at a time;
- :func:`isotropic_block_rotation` (N5, blocks under nonlinear mixing): ``(c_j, n) ->
  (R(theta(n)) c_j, n)`` for an isolated zero-mean isotropic block;
- :func:`invariant_block_direction` (N6, A7 holds but A7+ fails, even under linear mixing): a
  direction of a childless block that escapes its parents and its intervention is reflected
  with a nuisance coordinate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from conceptid.simulations.errors import ConceptIDError
from conceptid.simulations.graphs import DAG
from conceptid.simulations.interventions import Context, Hard, Soft
from conceptid.simulations.model import ConceptModel
from conceptid.simulations.sem import SEM

from .assumptions import intervention_contexts
from .equivalence import contains
from .gaussian import embedding_law
from .linalg import NUMERIC_FAILURES, Arithmetic, Numeric, to_fraction

__all__ = [
    "Witness",
    "WitnessError",
    "WitnessVerification",
    "identity_intervention",
    "isotropic_block_rotation",
    "missing_intervention",
    "no_observational_context",
    "observational_only",
]


class WitnessError(ConceptIDError):
    """The builder's conditions do not hold for this model (the message says which)."""


@dataclass
class WitnessVerification:
    """Outcome of :meth:`Witness.verify`.

    Attributes
    ----------
    equal_laws : bool
        The observed laws agree in every training context.
    outside_class : bool
        The second model's concepts are not an affine map of each of the first's.
    contexts : list of str
        Contexts checked: every training context of the design.
    max_discrepancy : float
        Largest absolute difference found (0 in exact arithmetic when equal).
    how : str
    held_out_equal : bool or None
        Whether the laws also agree in the held-out (composed) contexts, which are not observed
        and not part of the claim; ``None`` when the design has none or it was not computed.
    """

    equal_laws: bool
    outside_class: bool
    contexts: list
    max_discrepancy: float
    how: str
    held_out_equal: bool | None = None

    @property
    def ok(self) -> bool:
        return self.equal_laws and self.outside_class

    def to_dict(self) -> dict:
        return {
            "equal_laws": self.equal_laws,
            "outside_class": self.outside_class,
            "contexts": list(self.contexts),
            "max_discrepancy": self.max_discrepancy,
            "how": self.how,
            "held_out_equal": self.held_out_equal,
        }


@dataclass
class Witness:
    """Two models with identical observed laws in every training context, concepts outside the
    class.

    Attributes
    ----------
    kind : str
        ``N1`` .. ``N7`` (proofs/necessity.md).
    assumption : str
        The failing assumption the witness demonstrates.
    concepts : tuple of str
        Concepts whose read-outs differ outside the class.
    description : str
    model_a : ConceptModel
    model_b : ConceptModel or None
        The second model, when it is itself a ConceptModel (linear witnesses).
    transform : callable
        ``(c, n) -> (c', n')`` from the first model's variables to the second's, row-wise.
    """

    kind: str
    assumption: str
    concepts: tuple
    description: str
    model_a: ConceptModel
    model_b: ConceptModel | None
    transform: Callable
    _verify: Callable = field(repr=False, default=None)  # type: ignore[assignment]
    verification: WitnessVerification | None = None

    def verify(self, A: Arithmetic | None = None) -> WitnessVerification:
        """Check equal laws and difference outside the class; stores and returns the result."""
        self.verification = self._verify(A if A is not None else Numeric())
        return self.verification

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "assumption": self.assumption,
            "concepts": list(self.concepts),
            "description": self.description,
            "model_b": None if self.model_b is None else self.model_b.to_dict(),
            "verification": None if self.verification is None else self.verification.to_dict(),
        }


# -- linear witnesses -------------------------------------------------------------------------


def _non_gaussian(model: ConceptModel) -> list[str]:
    """Training contexts whose concept law is not Gaussian (a non-Gaussian noise or hard
    intervention family, or a nonlinear mechanism): there, equal means and covariances do not
    give equal laws."""
    bad = []
    for ctx in model.contexts:
        s = model.sem.intervene(ctx)
        if s.mechanism != "linear" or any(f != "gaussian" for f in s.noise_family):
            bad.append(ctx.name)
    return bad


def _verify_linear(model_a: ConceptModel, model_b: ConceptModel, exact_b: dict) -> Callable:
    """``exact_b``: the second model's parameters as exact Fractions (its floats are rounded)."""

    def same_law(ca, cb, A: Arithmetic):
        ma, Sa = embedding_law(model_a, ca, A)
        mb, Sb = embedding_law(model_b, cb, A, exact_b if A.exact else None)
        same = A.same_gaussian(ma, Sa, mb, Sb)
        try:  # the discrepancy is for the report only; the decision is same_gaussian's
            gap = max(
                float(np.max(np.abs(A.to_float(A.sub(ma, mb))))),
                float(np.max(np.abs(A.to_float(A.sub(Sa, Sb))))),
            )
        except OverflowError:  # an exact difference beyond float64's range
            gap = float("inf")
        return same, gap

    def run(A: Arithmetic) -> WitnessVerification:
        if [c.name for c in model_a.contexts] != [c.name for c in model_b.contexts]:
            raise WitnessError("the second model must have the first's training contexts")
        non_gaussian = _non_gaussian(model_a) + _non_gaussian(model_b)
        names, worst, equal = [], 0.0, not non_gaussian
        for ca, cb in zip(model_a.contexts, model_b.contexts):
            same, gap = same_law(ca, cb, A)
            equal &= same
            worst = max(worst, gap)
            names.append(ca.name)
        held = None
        if model_a.held_out and len(model_a.held_out) == len(model_b.held_out):
            try:
                held = all(same_law(ca, cb, A)[0] for ca, cb in zip(model_a.held_out,
                                                                    model_b.held_out))  # fmt: skip
            except ConceptIDError:  # an intervention that the second model's graph cannot take
                held = False
            except NUMERIC_FAILURES:  # not computable in this arithmetic: not known
                held = None
        if A.exact and exact_b is not None:
            outside = not _contains_exact(model_a, exact_b["readout"], A)
        else:
            outside = not contains(model_a, model_b, A)
        how = (
            "laws of the embedding e compared from each model's own SEM, read-out and nuisance "
            "in every training context (same mixing f, so equal laws of e give equal laws of x; "
            f"all of them Gaussian, so means and covariances decide), {A.description}"
        )
        if non_gaussian:
            how += f"; NOT Gaussian in {sorted(set(non_gaussian))}, so equality is not shown"
        return WitnessVerification(equal, outside, names, worst, how, held)

    return run


def _contains_exact(model_a: ConceptModel, T_b, A: Arithmetic) -> bool:
    """Exact version of :func:`contains` with the second read-out given as Fractions."""
    from .equivalence import EquivalenceClass

    K = model_a.K
    Ca, Cb = A.mat(model_a.C), A.rows(A.mat(T_b), range(K))
    D = A.mul(A.mul(Cb, A.T(Ca)), A.inv(A.mul(Ca, A.T(Ca))))
    if not A.equal(A.mul(D, Ca), Cb):
        return False
    return EquivalenceClass(model_a.sem.block_sizes).block_diagonal(D, A)


def _exact_base(sem: SEM):
    """The SEM's observational ``(B, mu, S)`` as Fraction object arrays (decimal reading)."""
    return (
        _frac_matrix(sem.weights),
        np.array([to_fraction(x) for x in sem.noise_mean], dtype=object),
        _frac_matrix(sem.noise_cov_matrix()),
    )


def _second_model(model: ConceptModel, sem_b: SEM, P: np.ndarray, swap=None):
    """The second model of a linear witness: SEM ``sem_b``, read-out ``T_B = P T`` (returned
    exactly, as Fractions, beside the float model), the same mixing and nuisance, and the same
    contexts (each passed through ``swap`` when given)."""
    Tq = P @ _frac_matrix(model.readout)
    swap = swap if swap is not None else (lambda c: c)
    model_b = ConceptModel(
        sem_b, model.mixing, _to_float(Tq), model.nuisance_dim, model.nuisance_scale,
        tuple(swap(c) for c in model.contexts), tuple(swap(c) for c in model.held_out),
    )  # fmt: skip
    return model_b, Tq


def _lin_transform(P: np.ndarray, K: int) -> Callable:
    def transform(c, n):
        z = np.concatenate([np.atleast_2d(c), np.atleast_2d(n)], axis=1) @ P.T
        return z[:, :K], z[:, K:]

    return transform


def _frac_matrix(M) -> np.ndarray:
    """Exact Fractions of a float matrix (see linalg.to_fraction)."""
    return np.array(
        [[x if isinstance(x, Fraction) else to_fraction(x) for x in row] for row in M],
        dtype=object,
    )


def _to_float(M) -> np.ndarray:
    return np.array([[float(x) for x in row] for row in M], dtype=float)


def missing_intervention(
    model: ConceptModel, concept: str | int, *, other: str | int | None = None, alpha=0.5
) -> Witness:
    """N1: concept ``j`` has no intervention context (no training context intervenes on it).

    With a non-descendant ``i``: the second model reads ``c'_j = c_j - alpha W c_i`` (``W`` the
    ``(k_j, k_i)`` matrix with ones on its main diagonal), all else unchanged. Its SEM has weights
    ``B' = B - (E_j^T - B[:, j]) alpha W E_i`` (edges ``i -> j`` and ``i -> children of j``
    added), the same noise laws and the same interventions on every other concept, except that a
    soft intervention on a child ``ch`` of ``j`` that sets the weight of ``j`` (or of ``i``) sets
    the weight of ``i`` to ``B~_ch,i + B~_ch,j alpha W`` (``B~`` that context's weights in the
    first model); its read-out is ``T_B = P T``.

    When every other concept descends from ``j`` (the root case), see
    :func:`_missing_intervention_root`: ``j`` is mixed with a child.

    Raises
    ------
    WitnessError
        When a training context intervenes on ``j``, or neither construction applies.
    """
    sem = model.sem
    j = sem.resolve(concept)
    if j in intervention_contexts(model):
        raise WitnessError(f"concept {sem.names[j]!r} has an intervention context (A6 holds)")
    desc = sem.graph.descendants(j)
    candidates = [i for i in sem.graph.order if i != j and i not in desc]
    if other is not None:
        i = sem.resolve(other)
        if i not in candidates:
            raise WitnessError(f"{sem.names[i]!r} is {sem.names[j]!r} or one of its descendants")
    elif candidates:
        i = candidates[0]
    else:
        return _missing_intervention_root(model, j)
    for ctx in model.contexts:
        if sem.names[j] in {sem.names[sem.resolve(t)] for t in ctx.targets}:
            raise WitnessError(f"context {ctx.name} intervenes on {sem.names[j]!r}")
    K, d = sem.K, model.d
    sj, si = sem.slices[j], sem.slices[i]
    a = to_fraction(alpha) if not isinstance(alpha, Fraction) else alpha
    W = np.zeros((K, K), dtype=object)
    W[:] = Fraction(0)
    for r in range(min(sj.stop - sj.start, si.stop - si.start)):
        W[sj.start + r, si.start + r] = a  # E_j^T (alpha W) E_i
    Bq = _frac_matrix(sem.weights)
    ImB = np.eye(K, dtype=object) * Fraction(1) - Bq
    # B' = I - (I - B)(I + E_j^T alpha W E_i)
    Bp = np.eye(K, dtype=object) * Fraction(1) - (ImB @ (np.eye(K, dtype=object) + W))
    Bp_f = _to_float(Bp)
    # a soft intervention on a child ``ch`` of j that sets the weight of j or of i is rewritten:
    # in the first model c_ch = B~_ch,j c_j + B~_ch,i c_i + ... with the context's weights B~,
    # and c_j = c'_j + alpha W c'_i, so the second model needs the weight
    # B~_ch,i + B~_ch,j alpha W on i under that context (the observational B' has it with B's
    # weights; a soft intervention that keeps them would otherwise undo it)
    kids = set(sem.graph.children(j))

    def rewritten(iv) -> bool:
        return (
            iv.kind == "soft"
            and sem.resolve(iv.target) in kids
            and any(sem.resolve(p) in (i, j) for p in iv.weights)
        )

    soft_kids = {sem.resolve(iv.target) for c in (*model.contexts, *model.held_out)
                 for iv in c.interventions if rewritten(iv)}  # fmt: skip
    adj = sem.graph.adjacency.copy()
    adj[i, j] = True
    for ch in sem.graph.children(j):
        if ch in soft_kids or np.any(Bp_f[sem.slices[ch], si] != 0):
            adj[i, ch] = True
    graph_b = DAG(adj, sem.names)
    sem_b = SEM(graph_b, Bp_f, sem.noise_mean, sem.noise_cov, sem.block_sizes, sem.noise_family)
    P = np.eye(d, dtype=object) * Fraction(1)
    P[:K, :K] -= W
    override: dict = {}

    def swap(c: Context) -> Context:
        ivs, s_a = [], None
        for iv in c.interventions:
            if rewritten(iv):
                ch = sem.resolve(iv.target)
                s_a = s_a if s_a is not None else sem.intervene(c)
                Bt = _frac_matrix(s_a.weights[sem.slices[ch]])
                block = Bt[:, si] + Bt[:, sj].dot(W[sj, si])  # exact, (k_ch, k_i)
                override[("soft", c.name, ch)] = {i: block}
                iv = _soft_with(sem, iv, {i: block}, drop=(i,))
            ivs.append(iv)
        return Context(tuple(ivs), c.name)

    model_b, Tq = _second_model(model, sem_b, P, swap)
    _, muq, Sq = _exact_base(sem)
    exact_b = {"base": (Bp, muq, Sq), "readout": Tq, "override": override}
    return Witness(
        kind="N1",
        assumption="A6",
        concepts=(sem.names[j],),
        description=(
            f"no intervention on {sem.names[j]!r}: the second model reads "
            f"{sem.names[j]}' = {sem.names[j]} - {a} * {sem.names[i]} (a non-descendant), with "
            f"edges {sem.names[i]} -> {sem.names[j]} and {sem.names[i]} -> children of "
            f"{sem.names[j]}; every training context's law of x is unchanged"
        ),
        model_a=model,
        model_b=model_b,
        transform=_lin_transform(_to_float(P), K),
        _verify=_verify_linear(model, model_b, exact_b),
    )


def _soft_with(sem: SEM, iv: Soft, blocks: dict, drop: tuple[int, ...]) -> Soft:
    """``iv`` (a soft intervention of ``sem``) for a second model: the weights it gives the
    parents ``drop`` removed, the exact ``blocks`` (parent index -> Fraction block) given in
    their place as floats; its other weights, mean and covariance as they were."""
    weights = {p: w for p, w in iv.weights.items() if sem.resolve(p) not in drop}
    weights |= {sem.names[i]: _to_float(b) for i, b in blocks.items()}
    return Soft(iv.target, weights, iv.mean, iv.cov)


def _require_hard_only(model: ConceptModel, j: int) -> None:
    """The witnesses below rewrite concept ``j``'s hard interventions; any other kind on ``j`` in a
    training context would need its own rewriting."""
    for c in model.contexts:
        for iv in c.interventions:
            if model.sem.resolve(iv.target) == j and iv.kind != "hard":
                raise WitnessError(
                    f"context {c.name} has a non-hard intervention on {model.sem.names[j]!r}"
                )


def identity_intervention(model: ConceptModel, concept: str | int) -> Witness:
    """N2: the intervention on ``j`` is the identity (A7 fails), ``j`` is a scalar source without
    children and with noise mean 0, and the model has a nuisance.

    ``(c_j, n_0)`` has the law ``N(0, diag(sigma^2, s^2))`` in every training context,
    independent of all else; the second model applies the reflection ``z -> z - 2 (v^T Q z)/(v^T
    Q v) v`` with ``v = (1, 1)`` and ``Q = diag(1/sigma^2, 1/s^2)``, which preserves that law, is
    rational, and makes ``c'_j`` depend on the nuisance. (The builder checks that the law of
    ``c_j`` is the same zero-mean Gaussian in every training context, whatever intervenes on it.)
    """
    sem = model.sem
    j = sem.resolve(concept)
    name = sem.names[j]
    if intervention_contexts(model).get(j) is None:
        raise WitnessError(f"concept {name!r} has no hard intervention context")
    return _nuisance_reflection(
        model, j,
        kind="N2",
        assumption="A7",
        concepts=(name,),
        description=(
            f"the intervention on {name!r} changes nothing: (c_{name}, n_0) has the same law in "
            "every training context, and a law-preserving reflection of that pair makes the "
            f"second model's {name} depend on the nuisance"
        ),
    )  # fmt: skip


def _ldl(S):
    """Exact LDL^T of a symmetric positive definite Fraction matrix: (L unit lower, D diag)."""
    n = len(S)
    L = [[Fraction(int(i == k)) for k in range(n)] for i in range(n)]
    D = [Fraction(0)] * n
    for i in range(n):
        D[i] = S[i][i] - sum(L[i][k] ** 2 * D[k] for k in range(i))
        for r in range(i + 1, n):
            L[r][i] = (S[r][i] - sum(L[r][k] * L[i][k] * D[k] for k in range(i))) / D[i]
    return L, D


def observational_only(model: ConceptModel, *, alpha=0.5) -> Witness:
    """N4: when every training context is observational, any invertible linear map of the
    concepts gives a second linear Gaussian model with the same law. Here ``c'_0 = c_0 + alpha
    c_1`` (scalar concepts); the second SEM is the complete DAG in index order read off ``LDL^T``
    of the new covariance. Any training context that intervenes (a shift, say) would have to be
    reproduced too, which this construction does not do: the builder refuses such designs."""
    sem = model.sem
    if any(k != 1 for k in sem.block_sizes) or sem.m < 2:
        raise WitnessError("observational_only handles >= 2 scalar concepts")
    busy = [c.name for c in model.contexts if not c.is_observational]
    if busy or not model.contexts:
        raise WitnessError(
            f"observational_only needs every training context to be observational; {busy} intervene"
        )
    if sem.mechanism != "linear":
        raise WitnessError("observational_only needs a linear SEM")
    K, d = sem.K, model.d
    a = to_fraction(alpha)
    P = np.eye(d, dtype=object) * Fraction(1)
    P[0, 1] = a
    # exact observational law of c, transformed
    M = _frac_inv(np.eye(K, dtype=object) * Fraction(1) - _frac_matrix(sem.weights))
    S = M @ _frac_matrix(sem.noise_cov_matrix()) @ M.T
    mu = M @ np.array([to_fraction(x) for x in sem.noise_mean], dtype=object)
    Pc = P[:K, :K]
    S2 = Pc @ S @ Pc.T
    mu2 = Pc @ mu
    L, D = _ldl(S2.tolist())
    Linv = _frac_inv(np.array(L, dtype=object))
    Bp = np.eye(K, dtype=object) * Fraction(1) - Linv
    noise_mean = Linv @ mu2
    graph = DAG(np.tril(np.ones((K, K), dtype=bool), -1).T & (_to_float(Bp).T != 0), sem.names)
    sem_b = SEM(
        graph, _to_float(Bp), np.array([float(x) for x in noise_mean]),
        tuple(np.array([[float(x)]]) for x in D),
    )  # fmt: skip
    model_b, Tq = _second_model(model, sem_b, P)
    Sb = np.array([[D[r] if r == c else Fraction(0) for c in range(K)] for r in range(K)],
                  dtype=object)  # fmt: skip
    exact_b = {"base": (Bp, noise_mean, Sb), "readout": Tq}
    return Witness(
        kind="N4",
        assumption="A6",
        concepts=(sem.names[0],),
        description=(
            f"observational data only: {sem.names[0]}' = {sem.names[0]} + {a} * {sem.names[1]} is "
            "the first concept of another linear Gaussian SEM with the same law"
        ),
        model_a=model,
        model_b=model_b,
        transform=_lin_transform(_to_float(P), K),
        _verify=_verify_linear(model, model_b, exact_b),
    )


def _frac_inv(M: np.ndarray) -> np.ndarray:
    """Exact inverse of a Fraction matrix (Gauss-Jordan)."""
    n = M.shape[0]
    A = [list(map(Fraction, row)) + [Fraction(int(i == k)) for k in range(n)] for i, row in
         enumerate(M.tolist())]  # fmt: skip
    for col in range(n):
        piv = next(r for r in range(col, n) if A[r][col] != 0)
        A[col], A[piv] = A[piv], A[col]
        p = A[col][col]
        A[col] = [x / p for x in A[col]]
        for r in range(n):
            if r != col and A[r][col] != 0:
                f = A[r][col]
                A[r] = [x - f * y for x, y in zip(A[r], A[col])]
    return np.array([row[n:] for row in A], dtype=object)


def invariant_block_direction(model: ConceptModel, concept: str | int) -> Witness:
    """N6 (A7+ fails for a block under *linear* mixing): block ``j`` has no children, its hard
    intervention keeps its noise law (``S~_j = S_j``, ``mu~_j = mu_j``), and some direction
    ``w != 0`` has ``w^T B_j. = 0`` and ``w^T mu_j = 0``; the model has a nuisance.

    Then ``t = w^T c_j ~ N(0, w^T S_j w)`` has the same law in every context and is independent
    of everything else, exactly like a nuisance coordinate. The second model reflects ``(t, n_0)``
    (law-preserving, rational) and writes ``c'_j = c_j + u (t' - t)`` with
    ``u = S_j w / (w^T S_j w)``; its SEM keeps the weights, its noise and intervention laws of
    ``j`` become ``N(mu_j, S'_j)``. A7 holds in both models; the concepts differ outside the class.
    """
    from .linalg import Exact

    sem = model.sem
    j = sem.resolve(concept)
    name = sem.names[j]
    k = sem.block_sizes[j]
    if k < 2:
        raise WitnessError(f"concept {name!r} is scalar (for scalars A7+ is A7)")
    if sem.graph.children(j):
        raise WitnessError(f"concept {name!r} must have no children")
    if model.nuisance_dim < 1:
        raise WitnessError("the model needs at least one nuisance dimension")
    ctx = intervention_contexts(model).get(j)
    if ctx is None:
        raise WitnessError(f"concept {name!r} has no hard intervention context")
    sl = sem.slices[j]
    s_int = sem.intervene(ctx)
    if not (
        np.array_equal(s_int.noise_mean[sl], sem.noise_mean[sl])
        and np.array_equal(s_int.noise_cov[j], sem.noise_cov[j])
    ):
        raise WitnessError(f"the intervention on {name!r} must keep its noise law")
    _require_hard_only(model, j)
    E = Exact()
    Bj = _frac_matrix(sem.weights[sl])  # (k, K)
    mu = np.array([to_fraction(x) for x in sem.noise_mean[sl]], dtype=object)
    M = np.concatenate([Bj, mu[:, None]], axis=1)  # w^T M = 0
    null = E.null_rows(E.mat(M.T))
    if E.shape(null)[0] == 0:
        raise WitnessError(f"no direction of {name!r} escapes its parents and mean (A7+ holds?)")
    w = np.array([Fraction(int(x.p), int(x.q)) for x in null.to_Matrix().row(0)], dtype=object)
    S = _frac_matrix(sem.noise_cov[j])
    Sw = S @ w
    var_t = w @ Sw
    u = Sw / var_t
    s2 = to_fraction(model.nuisance_scale) ** 2
    q = [1 / var_t, 1 / s2]
    vQv = q[0] + q[1]
    R = [[(1 if a == b else 0) - 2 * q[b] / vQv for b in range(2)] for a in range(2)]
    K, d = sem.K, model.d
    P = np.eye(d, dtype=object) * Fraction(1)
    # c'_j = c_j + u ((R00 - 1) w^T c_j + R01 n_0);  n'_0 = R10 w^T c_j + R11 n_0
    for r in range(k):
        for cidx in range(k):
            P[sl.start + r, sl.start + cidx] += u[r] * (R[0][0] - 1) * w[cidx]
        P[sl.start + r, K] = u[r] * R[0][1]
    for cidx in range(k):
        P[K, sl.start + cidx] = R[1][0] * w[cidx]
    P[K, K] = R[1][1]
    F = np.eye(k, dtype=object) * Fraction(1) + np.outer(u, w) * (R[0][0] - 1)
    S_new = F @ S @ F.T + np.outer(u, u) * (R[0][1] ** 2 * s2)
    S_new_f = _to_float(S_new)
    covs = list(sem.noise_cov)
    covs[j] = S_new_f
    sem_b = SEM(sem.graph, sem.weights, sem.noise_mean, tuple(covs), sem.block_sizes,
                sem.noise_family)  # fmt: skip

    def swap(c: Context) -> Context:
        ivs = tuple(
            Hard(iv.target, sem.noise_mean[sl], S_new_f) if sem.resolve(iv.target) == j else iv
            for iv in c.interventions
        )
        return Context(ivs, c.name)

    model_b, Tq = _second_model(model, sem_b, P, swap)
    Bq, muq, Sq = _exact_base(sem)
    Sq = np.array(Sq, dtype=object)
    Sq[sl, sl] = S_new
    exact_b = {"base": (Bq, muq, Sq), "readout": Tq, "override": {j: (mu, S_new)}}
    return Witness(
        kind="N6",
        assumption="A7+",
        concepts=(name,),
        description=(
            f"the direction w = {[str(x) for x in w]} of block {name!r} escapes its parents, its "
            "mean and its (law-preserving) intervention: w^T c_j behaves like a nuisance "
            "coordinate in every training context, and a reflection with n_0 gives the second model"
        ),
        model_a=model,
        model_b=model_b,
        transform=_lin_transform(_to_float(P), K),
        _verify=_verify_linear(model, model_b, exact_b),
    )


# -- witnesses that mix two scalar concepts (N1 root case, N7) ---------------------------------


def _exact_law(model: ConceptModel, ctx: Context, idx: list[int]):
    """Exact mean ``(len(idx),)`` and covariance of the concept coordinates ``idx`` under the
    training context ``ctx``, as Fractions."""
    from .gaussian import concept_law
    from .linalg import Exact

    E = Exact()
    mu, S = concept_law(model.sem, ctx, E, _exact_base(model.sem))
    mu, S = mu.to_Matrix(), S.to_Matrix()

    def q(x):
        return Fraction(int(x.p), int(x.q))

    return (
        np.array([q(mu[i, 0]) for i in idx], dtype=object),
        np.array([[q(S[i, k]) for k in idx] for i in idx], dtype=object),
    )


def _hard_kinds(model: ConceptModel, j: int) -> dict[str, bool]:
    """Training context name -> whether it intervenes on ``j`` (hard and Gaussian). Raises
    WitnessError on any other kind of intervention on ``j``, which the builders below do not
    rewrite."""
    out = {}
    for ctx in model.contexts:
        out[ctx.name] = False
        for iv in ctx.interventions:
            if model.sem.resolve(iv.target) == j:
                if iv.kind != "hard" or iv.family != "gaussian":
                    raise WitnessError(
                        f"context {ctx.name} has a {iv.kind} intervention on "
                        f"{model.sem.names[j]!r}; this construction rewrites hard Gaussian ones"
                    )
                out[ctx.name] = True
    return out


def _pair_witness(model: ConceptModel, u: int, v: int, alpha, beta, **info) -> Witness:
    """The second model ``c'_u = c_u + alpha c_v``, ``c'_v = beta c_u + c_v`` (scalar ``u, v``;
    every other coordinate unchanged), with an edge ``u' -> v'``.

    Its parameters are read off the first model's laws: the noise law of ``u'`` from a training
    context that does not intervene on ``u``; ``B'_vu`` and the noise law of ``v'`` from the
    regression of ``c'_v`` on ``c'_u`` in one that does not intervene on ``v``; the hard laws of
    ``u'`` and ``v'`` in each context from the laws of ``c'_u`` and ``c'_v`` there; and every other
    row of ``B`` as ``B_l P^{-1}`` (``c_l = B_l c + eps_l = B_l P^{-1} c' + eps_l``), and, under a
    context that intervenes softly on such an ``l`` and sets the weight of ``u`` or ``v``, that
    context's row ``B~_l P^{-1}`` (proofs/necessity.md, N1 root case). Whether this
    reproduces every training context is the verification's business: the builders choose
    ``alpha, beta`` so that it does (see them)."""
    sem = model.sem
    K, d = sem.K, model.d
    a, b = sem.slices[u].start, sem.slices[v].start
    P = np.eye(d, dtype=object) * Fraction(1)
    P[a, b], P[b, a] = Fraction(alpha), Fraction(beta)
    Pc = P[:K, :K]
    if Fraction(1) - Fraction(alpha) * Fraction(beta) == 0:
        raise WitnessError("the pair map is singular")
    _hard_kinds(model, u), _hard_kinds(model, v)  # raises on interventions it cannot rewrite
    pu, pv = np.array([Fraction(1), Fraction(alpha)]), np.array([Fraction(beta), Fraction(1)])

    def law(ctx):  # mean and covariance of (c'_u, c'_v) in ctx
        m, S = _exact_law(model, ctx, [a, b])
        Q = np.array([pu, pv], dtype=object)
        return Q @ m, Q @ S @ Q.T

    free_u = [c for c in model.all_contexts if not _targets(model, c, u)]
    free_v = [c for c in model.all_contexts if not _targets(model, c, v)]
    train = {c.name for c in model.contexts}
    free_u.sort(key=lambda c: c.name not in train)  # prefer training contexts
    free_v.sort(key=lambda c: c.name not in train)
    if not free_u or not free_v:
        raise WitnessError("the noise laws of the pair are never observed")
    mu_u, S_u = law(free_u[0])
    m2, S2 = law(free_v[0])
    w = S2[0, 1] / S2[0, 0]
    Bq, muq, Sq = _exact_base(sem)
    Pinv = _frac_inv(Pc)
    Bp = Bq @ Pinv
    Bp[a, :] = Fraction(0)
    Bp[b, :] = Fraction(0)
    Bp[b, a] = w
    muq = np.array(muq, dtype=object)
    Sq = np.array(Sq, dtype=object)
    muq[a], Sq[a, a] = mu_u[0], S_u[0, 0]
    muq[b], Sq[b, b] = m2[1] - w * m2[0], S2[1, 1] - w * S2[0, 1]

    # a soft intervention on another concept l that sets the weight of u or v is rewritten: in
    # the first model c_l = B~_l c + eps_l with that context's weights B~, and c = P^-1 c', so
    # the second model needs the row B~_l P^-1 under that context, which differs from the
    # observational B_l P^-1 in the columns of u and v only (P mixes those two alone)
    def rewritten(iv) -> bool:
        return (
            iv.kind == "soft"
            and sem.resolve(iv.target) not in (u, v)
            and any(sem.resolve(p) in (u, v) for p in iv.weights)
        )

    soft_rows = {}  # (context name, l) -> the exact (k_l, K) row B~_l P^-1
    for c in model.all_contexts:
        for iv in c.interventions:
            if rewritten(iv):
                l_ = sem.resolve(iv.target)
                Bt = _frac_matrix(sem.intervene(c).weights[sem.slices[l_]])
                soft_rows[(c.name, l_)] = Bt @ Pinv
    # the first model's edges (a declared edge of weight 0 included: a soft intervention may give
    # it a weight), but the parents of u and v, whose rows the pair map rewrites; then the edges
    # that the second model's weights need
    adj = sem.graph.adjacency.copy()
    adj[:, u] = adj[:, v] = False
    for i in range(sem.m):
        for l_ in range(sem.m):
            if i != l_ and np.any(Bp[sem.slices[l_], sem.slices[i]] != 0):
                adj[i, l_] = True
    for (_, l_), row in soft_rows.items():  # an edge u -> l or v -> l that only such a row needs
        for i in (u, v):
            if np.any(row[:, sem.slices[i]] != 0):
                adj[i, l_] = True
    try:
        graph_b = DAG(adj, sem.names)
    except ConceptIDError as err:
        raise WitnessError(f"the second model's graph is not acyclic: {err}") from None
    covs = tuple(_to_float(Sq[sl, sl]) for sl in sem.slices)
    sem_b = SEM(graph_b, _to_float(Bp), np.array([float(x) for x in muq]), covs,
                sem.block_sizes, sem.noise_family)  # fmt: skip
    override = {}

    def swap(c: Context) -> Context:
        ivs = []
        for iv in c.interventions:
            t = sem.resolve(iv.target)
            if t in (u, v) and iv.kind == "hard":
                mm, SS = law(c)
                r = 0 if t == u else 1
                override[(c.name, t)] = (np.array([mm[r]], dtype=object),
                                         np.array([[SS[r, r]]], dtype=object))  # fmt: skip
                iv = Hard(iv.target, float(mm[r]), float(SS[r, r]))
            elif rewritten(iv):
                row = soft_rows[(c.name, t)]
                blocks = {i: row[:, sem.slices[i]] for i in (u, v) if adj[i, t]}
                override[("soft", c.name, t)] = blocks
                iv = _soft_with(sem, iv, blocks, drop=(u, v))
            ivs.append(iv)
        return Context(tuple(ivs), c.name)

    try:
        model_b, Tq = _second_model(model, sem_b, P, swap)
    except ConceptIDError as err:  # an intervention the second model's graph cannot take
        raise WitnessError(f"the second model cannot take the design: {err}") from None
    exact_b = {"base": (Bp, muq, Sq), "readout": Tq, "override": override}
    return Witness(
        model_a=model,
        model_b=model_b,
        transform=_lin_transform(_to_float(P), K),
        _verify=_verify_linear(model, model_b, exact_b),
        **info,
    )


def _targets(model: ConceptModel, ctx: Context, j: int) -> bool:
    return any(model.sem.resolve(t) == j for t in ctx.targets)


def _missing_intervention_root(model: ConceptModel, j: int) -> Witness:
    """N1, root case: concept ``j`` has no intervention and every other concept descends from it
    (so ``j`` is a source). Needs a scalar child ``k`` whose only parent is ``j``, hard Gaussian
    interventions on ``k`` with one law ``N(mu~_k, s~_k)`` that keeps its mean
    (``mu~_k = B_kj mu_j + mu_k``), and ``B_kj^2 s_j + s_k != s~_k``.

    The second model reads ``c'_j = c_j + alpha c_k``, ``c'_k = beta c_j + c_k`` with
    ``alpha = -2 B_kj s_j / (B_kj^2 s_j + s_k - s~_k)`` (the law of ``c'_j`` is then the same
    whether ``k`` is intervened on or not, so ``c'_j`` is a source with one noise law) and
    ``beta = -alpha s~_k / s_j`` (under ``do(k)``, ``c'_j`` and ``c'_k`` are uncorrelated, as a
    hard intervention on ``k'`` requires). An intervention that moves the mean of ``c_k`` would
    move the mean of ``c'_j``: then no witness of this kind exists."""
    sem = model.sem
    name = sem.names[j]
    if sem.block_sizes[j] != 1:
        raise WitnessError(f"concept {name!r} is a block; the root case handles scalar concepts")
    kids = [k for k in sem.graph.children(j)
            if sem.graph.parents(k) == [j] and sem.block_sizes[k] == 1]  # fmt: skip
    errors = []
    for k in kids:
        try:
            hard = _hard_kinds(model, k)
        except WitnessError as err:
            errors.append(str(err))
            continue
        ctxs = [c for c in model.contexts if hard[c.name]]
        if not ctxs:
            errors.append(f"no training context intervenes on {sem.names[k]!r}")
            continue
        s_int = sem.intervene(ctxs[0])
        sj, sk = to_fraction(sem.noise_cov[j][0, 0]), to_fraction(sem.noise_cov[k][0, 0])
        st = to_fraction(s_int.noise_cov[k][0, 0])
        bkj = to_fraction(sem.weights[sem.slices[k].start, sem.slices[j].start])
        kept = to_fraction(s_int.noise_mean[sem.slices[k]][0]) == bkj * to_fraction(
            sem.noise_mean[sem.slices[j]][0]
        ) + to_fraction(sem.noise_mean[sem.slices[k]][0])
        if not kept:
            errors.append(f"the intervention on {sem.names[k]!r} moves its mean")
            continue
        den = bkj**2 * sj + sk - st
        if den == 0:
            errors.append(f"the intervention on {sem.names[k]!r} keeps its variance")
            continue
        alpha = -2 * bkj * sj / den
        beta = -alpha * st / sj
        kname = sem.names[k]
        return _pair_witness(
            model, j, k, alpha, beta,
            kind="N1",
            assumption="A6",
            concepts=(name, kname),
            description=(
                f"no intervention on {name!r}, the root of every other concept: the second model "
                f"reads {name}' = {name} + {alpha} * {kname} and {kname}' = {beta} * {name} + "
                f"{kname}, with {name}' a source whose law does not change under do({kname}); "
                "every training context's law of x is unchanged"
            ),
        )  # fmt: skip
    raise WitnessError(
        f"concept {name!r} is an ancestor of every other concept, and no child fits the root "
        "construction (" + ("; ".join(errors) or "no scalar child with a single parent") + ")"
    )


def _nuisance_reflection(model: ConceptModel, j: int, **info) -> Witness:
    """``j`` scalar, no parents, no children, a nuisance, and the law of ``c_j`` is the same
    ``N(0, sigma^2)`` in every training context: ``(c_j, n_0)`` then has the law
    ``N(0, diag(sigma^2, s^2))`` in every training context, independent of all else; the second
    model applies the reflection ``z -> z - 2 (v^T Q z)/(v^T Q v) v`` with ``v = (1, 1)`` and
    ``Q = diag(1/sigma^2, 1/s^2)``, which preserves that law, is rational, and makes ``c'_j``
    depend on the nuisance. Same SEM, same contexts."""
    sem = model.sem
    name = sem.names[j]
    if sem.block_sizes[j] != 1:
        raise WitnessError(f"concept {name!r} is a block; this builder handles scalar concepts")
    if sem.graph.parents(j) or sem.graph.children(j):
        raise WitnessError(f"concept {name!r} must have no parents and no children")
    if model.nuisance_dim < 1:
        raise WitnessError("the model needs at least one nuisance dimension")
    sl = sem.slices[j]
    laws = set()
    for ctx in model.contexts:
        s = sem.intervene(ctx)
        laws.add((float(s.noise_mean[sl][0]), float(s.noise_cov[j][0, 0]), s.noise_family[j]))
    if len(laws) != 1 or next(iter(laws))[0] != 0 or next(iter(laws))[2] != "gaussian":
        raise WitnessError(
            f"the law of {name!r} must be one zero-mean Gaussian in every training context, got "
            f"{sorted(laws)} (mean, variance, family)"
        )
    K, d = sem.K, model.d
    var = to_fraction(next(iter(laws))[1])
    s2 = to_fraction(model.nuisance_scale) ** 2
    q = [1 / var, 1 / s2]
    v = [Fraction(1), Fraction(1)]
    vQv = q[0] * v[0] ** 2 + q[1] * v[1] ** 2
    R = [[(1 if a == b else 0) - 2 * v[a] * q[b] * v[b] / vQv for b in range(2)] for a in range(2)]
    P = np.eye(d, dtype=object) * Fraction(1)
    idx = [sl.start, K]
    for a in range(2):
        for b in range(2):
            P[idx[a], idx[b]] = Fraction(R[a][b])
    model_b, Tq = _second_model(model, sem, P)
    exact_b = {"base": _exact_base(sem), "readout": Tq}
    return Witness(
        model_a=model,
        model_b=model_b,
        transform=_lin_transform(_to_float(P), K),
        _verify=_verify_linear(model, model_b, exact_b),
        **info,
    )


def no_observational_context(model: ConceptModel, concept: str | int) -> Witness:
    """N7 (A0 fails: no training context is observational, while A1-A7 may all hold).

    Two constructions, tried in turn:

    - ``concept`` is scalar and isolated (no parents, no children), the model has a nuisance,
      and the law of the concept is one zero-mean Gaussian in every training context (e.g. one
      concept with only ``do(a)``): a law-preserving reflection of ``(c_a, n_0)``, as in N2;
    - ``concept`` and another scalar concept form a pair with no edge to any other concept (at
      most one edge between them, ``u -> v``), and every training context intervenes, hard and
      Gaussian, on exactly one of the two, with one law per concept (e.g. the chain ``a -> b``
      with ``do(a)`` and ``do(b)`` only). The observational law of the pair is then never seen:
      the second model reads ``c'_u = c_u + c_v``, ``c'_v = beta c_u + c_v`` with
      ``beta = -s~_v / s_u`` (``s_u`` the noise variance of ``u``, ``s~_v`` the variance of the
      intervention on ``v``), so that ``c'_u`` and ``c'_v`` are uncorrelated under ``do(v)``, and
      an edge ``u' -> v'`` fitted under ``do(u)``. Both concepts leave the class.

    Other designs without an observational context are not covered (``check`` says so, naming
    A0).

    Parameters
    ----------
    model : ConceptModel
        A linear Gaussian model whose design has no observational training context.
    concept : str or int
        The concept to move out of the class.

    Returns
    -------
    Witness
        Kind ``N7``, assumption ``A0``, not yet verified (call :meth:`Witness.verify`).

    Raises
    ------
    WitnessError
        When the design has an observational context, or neither construction applies (the
        message lists why, per construction).
    """
    from .assumptions import observational_contexts

    sem = model.sem
    j = sem.resolve(concept)
    name = sem.names[j]
    if observational_contexts(model):
        raise WitnessError("the design has an observational context (A0 holds)")
    errors = []
    try:
        return _nuisance_reflection(
            model, j,
            kind="N7",
            assumption="A0",
            concepts=(name,),
            description=(
                f"no observational context, and {name!r} has one zero-mean law in every training "
                f"context: a law-preserving reflection of (c_{name}, n_0) makes the second "
                f"model's {name} depend on the nuisance"
            ),
        )  # fmt: skip
    except WitnessError as err:
        errors.append(str(err))
    others = set(range(sem.m))
    for i in range(sem.m):
        pair = {i, j}
        if i == j or sem.block_sizes[i] != 1 or sem.block_sizes[j] != 1:
            continue
        touching = [
            q for q in others - pair
            if set(sem.graph.parents(q)) & pair or set(sem.graph.children(q)) & pair
        ]  # fmt: skip
        if touching:
            continue
        try:
            hi, hj = _hard_kinds(model, i), _hard_kinds(model, j)
        except WitnessError as err:
            errors.append(str(err))
            continue
        if any(hi[c.name] == hj[c.name] for c in model.contexts):
            errors.append(
                f"some training context intervenes on both or neither of {name!r}, {sem.names[i]!r}"
            )
            continue
        if j in sem.graph.children(i):
            u, v = i, j
        elif i in sem.graph.children(j):
            u, v = j, i
        else:
            u, v = min(i, j), max(i, j)
        hv = hi if v == i else hj
        ctx_v = next((c for c in model.contexts if hv[c.name]), None)
        if ctx_v is None or all(hv[c.name] for c in model.contexts):
            errors.append(f"{sem.names[u]!r} or {sem.names[v]!r} is never intervened on alone")
            continue
        s_u = to_fraction(sem.noise_cov[u][0, 0])
        s_v = to_fraction(sem.intervene(ctx_v).noise_cov[v][0, 0])
        beta = -s_v / s_u
        nu, nv = sem.names[u], sem.names[v]
        return _pair_witness(
            model, u, v, Fraction(1), beta,
            kind="N7",
            assumption="A0",
            concepts=(nu, nv),
            description=(
                f"no observational context, and every context intervenes on exactly one of "
                f"{nu!r}, {nv!r}: the second model reads {nu}' = {nu} + {nv} and {nv}' = {beta} "
                f"* {nu} + {nv}, with an edge {nu} -> {nv}; every training context's law of x "
                "is unchanged"
            ),
        )  # fmt: skip
    raise WitnessError(
        f"no observational context, but no N7 construction applies to {name!r}: "
        + "; ".join(errors or ["no concept pairs with it"])
    )


# -- the nuisance-dependent rotation of an isotropic block (N5) ------------------------------


def isotropic_block_rotation(
    model: ConceptModel,
    concept: str | int,
    *,
    theta: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Witness:
    """N5: an isolated block ``j`` (no parents, no children) with zero-mean isotropic noise in
    both its contexts (``S_j = s I``, ``S~_j = s~ I``), in a model with a nuisance: the map
    ``(c_j, n) -> (R(theta(n)) c_j, n)`` preserves every context's law, and the second model's
    mixing ``f o T^{-1} o h^{-1}`` is still injective and differentiable. ``theta`` defaults to
    ``pi * tanh(n_0)``; for a 2-d block R is the plane rotation, for larger blocks the rotation
    acts on the block's first two coordinates."""
    sem = model.sem
    j = sem.resolve(concept)
    name = sem.names[j]
    k = sem.block_sizes[j]
    if k < 2:
        raise WitnessError(f"concept {name!r} is scalar: a rotation needs a block of size >= 2")
    if sem.graph.parents(j) or sem.graph.children(j):
        raise WitnessError(f"concept {name!r} must be isolated (no parents, no children)")
    if model.nuisance_dim < 1:
        raise WitnessError("the model needs at least one nuisance dimension")
    sl = sem.slices[j]
    for ctx in model.contexts:
        s = sem.intervene(ctx)
        S = s.noise_cov[j]
        if not (
            np.array_equal(S, S[0, 0] * np.eye(k))  # exactly: a rotation keeps only s I
            and np.all(s.noise_mean[sl] == 0)
            and s.noise_family[j] == "gaussian"
            and s.mechanism == "linear"
        ):
            raise WitnessError(
                f"the noise of {name!r} must be zero-mean, Gaussian and isotropic in every "
                f"training context (fails in {ctx.name})"
            )
    _require_hard_only(model, j)
    th = theta if theta is not None else (lambda n: np.pi * np.tanh(n[:, 0]))
    K = sem.K

    def rotate(c, n, sign=1.0):
        c = np.array(c, dtype=float)
        t = sign * th(np.atleast_2d(n))
        a, b = c[:, sl.start].copy(), c[:, sl.start + 1].copy()
        c[:, sl.start] = np.cos(t) * a - np.sin(t) * b
        c[:, sl.start + 1] = np.sin(t) * a + np.cos(t) * b
        return c

    def transform(c, n):
        return rotate(c, n), np.array(n, dtype=float)

    def preserved(ctx, rng) -> float:
        """Largest change of the context's Gaussian log-density, or of a round trip, at 500
        random points."""
        from .gaussian import concept_law

        mu, S = concept_law(sem, ctx, Numeric())
        mu = Numeric().to_float(mu).ravel()
        S = Numeric().to_float(S)
        c = rng.multivariate_normal(mu, S, size=500)
        n = model.nuisance_scale * rng.standard_normal((500, model.nuisance_dim))
        c2, n2 = transform(c, n)
        # the Jacobian of (c, n) -> (R(theta(n)) c, n) is block triangular with a rotation on
        # the diagonal: determinant 1, so density invariance is p(h(z)) == p(z)
        Sinv = np.linalg.inv(S)

        def logp(cc):
            dlt = cc - mu
            return -0.5 * np.einsum("ni,ij,nj->n", dlt, Sinv, dlt)

        back = rotate(c2, n2, -1.0)
        return max(float(np.max(np.abs(logp(c2) - logp(c)))), float(np.max(np.abs(back - c))))

    def verify(A: Arithmetic) -> WitnessVerification:
        rng = np.random.default_rng(0)
        worst = max((preserved(ctx, rng) for ctx in model.contexts), default=0.0)
        names = [ctx.name for ctx in model.contexts]
        held = None
        if model.held_out:
            try:
                held = max(preserved(ctx, rng) for ctx in model.held_out) < 1e-9
            except (ConceptIDError, np.linalg.LinAlgError, ValueError):
                held = False
        # outside the class: the new block depends on the nuisance
        c = np.zeros((2, K))
        c[:, sl.start] = 1.0
        n = np.array([[0.0] * model.nuisance_dim, [0.7] + [0.0] * (model.nuisance_dim - 1)])
        moved = transform(c, n)[0]
        outside = bool(np.abs(moved[0, sl] - moved[1, sl]).max() > 1e-3)
        equal = worst < 1e-9
        return WitnessVerification(
            equal,
            outside,
            names,
            worst,
            "the block's law is N(0, s I) in every training context, its noise isotropic bit for "
            "bit (checked when the witness was built), and every rotation preserves N(0, s I); "
            "confirmed numerically: the map preserves each training context's Gaussian "
            "log-density at 500 random points per context (Jacobian determinant 1) and inverts "
            "exactly; tolerance 1e-9",
            held,
        )

    return Witness(
        kind="N5",
        assumption="blocks under nonlinear mixing (open case)",
        concepts=(name,),
        description=(
            f"block {name!r} is isolated and isotropic: rotating it by an angle that depends on "
            "the nuisance preserves every training context's law; the second model's mixing "
            "f o T^-1 o h^-1 is injective and differentiable, so A1-A7 hold for it too, yet its "
            "block depends on n"
        ),
        model_a=model,
        model_b=None,
        transform=transform,
        _verify=verify,
    )
