"""Identification of concepts under linear mixing from context moments (Theorem L, peeling).

Input: the mean and covariance of ``x`` in the observational context and in one hard-intervention
context per concept (population moments, or sample moments), the targets and block sizes.
Output: the concept read-out ``c = H x`` up to an invertible linear map of each block, the causal
order, graph, SEM and intervention laws in the identified coordinates.

The algorithm (proofs/lemma_linear_identification.md):

1. Pick ``d = rank Sigma_0`` coordinates ``y`` of ``x`` that are an invertible linear function of
   ``(c, n)``.
2. ``Delta_k = Psi_k - Psi_0``, the difference of homogeneous precisions (log-density ratio);
   ``L_k`` = linear parts of its row space. Under A5 the nuisance cancels; under A7+ ``L_k`` is
   the read-out image of ``span(E_k, B_k.)``.
3. Peel in causal order: with ``S`` the concepts identified so far (ancestrally closed), a concept
   ``k`` whose parents all lie in ``S`` is exactly one with ``dim(L_k + span H_S) = dim H_S + k_k``;
   its block is ``Z_k = {r in L_k : Cov_k(r y, H_S y) = 0}`` (Lemma 4).
4. Regress each block on its predecessors in observational concept moments: ``B``, noise laws and
   graph; the intervention laws come from each context.

In exact arithmetic every rank decision is exact. With sample moments the rank decisions are made
by singular-value gaps: the candidate with the smallest excess singular value is peeled next.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sympy.polys.matrices import DomainMatrix

from conceptid.simulations.errors import ConceptIDError
from conceptid.simulations.graphs import DAG
from conceptid.simulations.validation import check_number, is_number

from .gaussian import homogeneous_precision
from .linalg import RTOL_MAX, Arithmetic, Numeric

__all__ = [
    "IdentificationError",
    "IdentifiedModel",
    "identify_linear",
    "identify_linear_ml",
    "model_moments",
]


class IdentificationError(ConceptIDError):
    """The moments do not fit the assumptions of Theorem L (or are of the wrong shape)."""


@dataclass
class IdentifiedModel:
    """Result of :func:`identify_linear` (concept coordinates fixed only up to the class).

    Attributes
    ----------
    readout : ndarray, (K, p)
        ``H``: identified concepts ``c_hat = H x``.
    order : list of int
        Concepts in the order they were peeled (a causal order).
    weights : ndarray, (K, K)
        SEM weights in the identified coordinates (rows child, columns parent).
    noise_mean : ndarray, (K,)
    noise_cov : list of ndarray
    intervention_mean, intervention_cov : dict
        Concept index -> hard-intervention law in the identified coordinates.
    graph : DAG
        Blocks with a nonzero weight block (exact zeros, or Frobenius norm above ``edge_tol``).
    method : str
    """

    readout: np.ndarray
    order: list
    weights: np.ndarray
    noise_mean: np.ndarray
    noise_cov: list
    intervention_mean: dict
    intervention_cov: dict
    graph: DAG
    method: str


def model_moments(model, A: Arithmetic):
    """Population moments of ``x`` under linear mixing: one ``(mean (p, 1), cov (p, p))`` per
    training context of ``model``, in arithmetic ``A``, and the target of each context."""
    from conceptid.simulations.mixing import LinearMixing

    from .gaussian import embedding_law

    if not isinstance(model.mixing, LinearMixing):
        raise IdentificationError("population moments of x need a linear mixing")
    G = A.mat(model.mixing.A)
    out, targets = [], []
    for ctx in model.contexts:
        m, S = embedding_law(model, ctx, A)
        out.append((A.mul(G, m), A.mul(A.mul(G, S), A.T(G))))
        targets.append(None if ctx.is_observational else model.sem.resolve(ctx.targets[0]))
    return out, targets


def identify_linear(
    moments: Sequence[tuple],
    targets: Sequence[int | None],
    block_sizes: Sequence[int],
    A: Arithmetic | None = None,
    *,
    edge_tol: float = 0.1,
    names: Sequence[str] | None = None,
    peel_order: Sequence[int] | None = None,
) -> IdentifiedModel:
    """Identify concept read-outs, graph and SEM from context moments of ``x``.

    Parameters
    ----------
    moments : sequence of (mean, cov)
        One per context: ``mean`` ``(p,)`` or ``(p, 1)``, ``cov`` ``(p, p)``; arrays or matrices
        of ``A``. Exactly one context must be observational. Moments in a float type coarser
        than float64 (float32) are checked and decided (ranks) at their own rounding,
        ``10 p eps`` of that type, where it exceeds ``A``'s tolerance.
    targets : sequence of int or None
        The intervened concept of each context (``None``: observational).
    block_sizes : sequence of int
        ``k_j`` of each concept; every concept needs exactly one context.
    A : Arithmetic
        ``Exact()`` for population moments in rationals, ``Numeric()`` (default) otherwise.
    edge_tol : float
        Numeric only: a weight block counts as an edge when its Frobenius norm exceeds this
        (a finite number >= 0; checked in exact arithmetic too).
    peel_order : sequence of int, optional
        Peel the concepts in this order instead of choosing each next one (a permutation of
        ``0..m-1`` that must be a causal order of the moments' model;
        :func:`identify_linear_ml` searches over it).

    Raises
    ------
    IdentificationError
        Before any work: ``edge_tol`` not a finite number >= 0; ``block_sizes`` not positive
        integers; a target that is not a concept index (a name, a float, a bool) or is out of
        range, missing or repeated; ``peel_order`` not a permutation of the concepts; moments
        that are not ``(mean, cov)`` pairs of real, finite arrays of one dimension ``p >= K``
        (``K = sum(block_sizes)``); a covariance that is not symmetric or not positive
        semi-definite (:meth:`~conceptid.identifiability.linalg.Arithmetic.covariance_problem`:
        relative to its scale, to ``max(rtol, 1e-10)`` in numeric arithmetic and ``1e-10`` in
        exact). After: moments that do not fit the assumptions (no concept can be peeled).
    """
    A = A if A is not None else Numeric()
    edge_tol, ks, obs, ctx_of, mats, peel_order = _checked(
        moments, targets, block_sizes, A, edge_tol, peel_order
    )
    A = _at_input_rounding(A, moments)
    prepared = _Prepared(ks, obs, ctx_of, *_order_free(mats, obs, ctx_of, ks, A))
    return _identify(prepared, A, edge_tol, names, peel_order)


@dataclass(frozen=True)
class _Prepared:
    """What :func:`identify_linear` computes before the peel, the same for every peel order:
    the block sizes, the observational context, each concept's context, ``T`` (``y = T x``),
    every context's ``y`` moments and the precision changes ``L_j``."""

    ks: list
    obs: int
    ctx_of: dict
    to_y: object
    ys: list
    L: dict


def _order_free(mats, obs: int, ctx_of: dict, ks: list[int], A: Arithmetic) -> tuple:
    """Steps 1 and 2 (``(to_y, ys, L)``): they do not depend on the peel order."""
    to_y, ys = _coordinates(mats, obs, sum(ks), A)
    return to_y, ys, _precision_changes(ys, obs, ctx_of, ks, A)


def _identify(
    prep: _Prepared, A: Arithmetic, edge_tol, names, peel_order, cache: dict | None = None
) -> IdentifiedModel:
    """Steps 3 and 4 of :func:`identify_linear` on its checked, prepared input; ``cache``
    (:func:`_peel`) shares the peel of a common prefix between orders."""
    ks, obs, ctx_of, to_y, ys = prep.ks, prep.obs, prep.ctx_of, prep.to_y, prep.ys
    H, order = _peel(prep.L, ys, ctx_of, ks, A, peel_order, cache)
    Hc = A.vstack(*[H[j] for j in range(len(ks))])
    weights, noise_mean, noise_cov, adjacency = _sem(Hc, ys[obs], order, ks, A, edge_tol)
    int_mean, int_cov = _intervention_laws(Hc, ys, ctx_of, ks, A)
    return IdentifiedModel(
        readout=A.to_float(Hc) @ A.to_float(to_y),
        order=order,
        weights=weights,
        noise_mean=noise_mean,
        noise_cov=noise_cov,
        intervention_mean=int_mean,
        intervention_cov=int_cov,
        graph=DAG(adjacency, tuple(names) if names is not None else ()),
        method=A.gap_description,
    )


def _checked(moments, targets, block_sizes, A: Arithmetic, edge_tol, peel_order) -> tuple:
    """Every input of :func:`identify_linear` checked before any work: ``(edge_tol, ks, obs,
    ctx_of, mats, peel_order)``."""
    edge_tol = check_number(edge_tol, "edge_tol", integer=False, minimum=0,
                            error=IdentificationError)  # fmt: skip
    ks = _block_sizes(block_sizes)
    obs, ctx_of = _contexts(moments, targets, len(ks))
    mats = _matrices(moments, A, sum(ks))
    return edge_tol, ks, obs, ctx_of, mats, _peel_order(peel_order, len(ks))


def _sequence(value, what: str) -> list:
    """``value`` as a list when it is a list, tuple or 1-D array (not a string)."""
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise IdentificationError(f"{what} must be a list, got {value!r:.80}")
    return list(value)


def _is_index(j) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(j, numbers.Integral) and not isinstance(j, bool | np.bool_)


def _block_sizes(block_sizes) -> list[int]:
    sizes = _sequence(block_sizes, "block_sizes")
    return [check_number(k, "each of block_sizes", error=IdentificationError) for k in sizes]


def _peel_order(peel_order, m: int) -> list[int] | None:
    """``peel_order`` as a list of ints: each concept ``0..m-1`` once, or None."""
    if peel_order is None:
        return None
    order = _sequence(peel_order, "peel_order")
    if not all(map(_is_index, order)) or sorted(int(j) for j in order) != list(range(m)):
        raise IdentificationError(f"peel_order must be a permutation of the concepts 0..{m - 1} "
                                  f"(each once), got {order!r:.80}")  # fmt: skip
    return [int(j) for j in order]


def _contexts(moments, targets, m: int) -> tuple[int, dict[int, int]]:
    """The observational context's index and each concept's intervention context, checked."""
    moments = _sequence(moments, "moments")
    targets = _sequence(targets, "targets")
    if len(moments) != len(targets):
        raise IdentificationError(f"{len(moments)} moment pairs but {len(targets)} targets")
    for i, t in enumerate(targets):
        if t is not None and not _is_index(t):
            raise IdentificationError(f"targets[{i}] must be a concept index (an int) or None, "
                                      f"got {t!r:.80}; names are not resolved here")  # fmt: skip
    obs = [i for i, t in enumerate(targets) if t is None]
    if len(obs) != 1:
        raise IdentificationError(f"exactly one observational context needed, got {len(obs)}")
    ctx_of = {}
    for i, t in enumerate(targets):
        if t is None:
            continue
        if not 0 <= int(t) < m:
            raise IdentificationError(f"target {t} out of range for {m} concepts")
        if int(t) in ctx_of:
            raise IdentificationError(f"concept {t} has two intervention contexts")
        ctx_of[int(t)] = i
    missing = [j for j in range(m) if j not in ctx_of]
    if missing:
        raise IdentificationError(f"concepts {missing} have no intervention context (A6)")
    return obs[0], ctx_of


def _real_matrix(value, A: Arithmetic, what: str):
    """``value`` as a matrix of ``A``; complex or non-numeric values refused, naming ``what``
    (numpy would drop an imaginary part with only a warning)."""
    if not isinstance(value, DomainMatrix):
        try:
            complex_ = np.iscomplexobj(value)
        except (TypeError, ValueError):  # a ragged list
            complex_ = False
        if complex_:
            raise IdentificationError(f"{what} must be real, got complex values")
    try:
        return A.mat(value)
    except (TypeError, ValueError) as err:
        raise IdentificationError(f"{what} must be a real array: {err}") from None


def _matrices(moments, A: Arithmetic, K: int) -> list[tuple]:
    """Every context's ``(mean (p, 1), cov (p, p))`` as matrices of ``A``, checked: real and
    finite, one ``p >= K`` for all, each covariance symmetric and positive semi-definite."""
    mats, p = [], None
    for i, pair in enumerate(moments):
        if not isinstance(pair, Sequence | np.ndarray) or isinstance(pair, str) or len(pair) != 2:
            raise IdentificationError(f"moments[{i}] must be a (mean, cov) pair, got "
                                      f"{pair!r:.80}")  # fmt: skip
        mean, cov = pair
        mean = mean if not isinstance(mean, np.ndarray) else mean.reshape(-1, 1)
        mean_m = _real_matrix(mean, A, f"moments[{i}] mean")
        cov_m = _real_matrix(cov, A, f"moments[{i}] covariance")
        if A.shape(mean_m)[1] != 1 and A.shape(mean_m)[0] == 1:
            mean_m = A.T(mean_m)
        if A.shape(cov_m)[0] != A.shape(cov_m)[1] or A.shape(cov_m)[0] != A.shape(mean_m)[0]:
            raise IdentificationError("each context needs a (p,) mean and a (p, p) covariance")
        if p is not None and A.shape(cov_m)[0] != p:
            raise IdentificationError(f"moments[{i}] is of dimension {A.shape(cov_m)[0]} but "
                                      f"moments[0] of {p}: one p for every context")  # fmt: skip
        p = A.shape(cov_m)[0]
        if not (A.is_finite(cov_m) and A.is_finite(mean_m)):
            raise IdentificationError(f"moments[{i}] contains NaN or infinite values")
        problem = A.covariance_problem(cov_m, _rounding(cov, p))
        if problem is not None:
            raise IdentificationError(f"moments[{i}] covariance is {problem}")
        mats.append((mean_m, cov_m))
    if p is not None and p < K:
        raise IdentificationError(f"the moments are of dimension p = {p} < K = {K} (the sum "
                                  "of block_sizes): no read-out of K concepts exists")  # fmt: skip
    return mats


def _rounding(cov, p: int) -> float:
    """The relative rounding error of a ``(p, p)`` covariance as given: ``10 p eps`` of its
    float type (a product of ``p`` terms, each rounded; float32 moments, as torch computes them,
    are asymmetric and slightly indefinite at ``1e-7``, far above float64's), never beyond
    float32's (float16 resolves only ``1e-3``); 0 for anything but a float array or tensor
    (lists are read in float64, exact values have no rounding)."""
    eps = _float_eps(cov)  # lists are read as float64: no allowance
    # float16 resolves 1e-3: at that rounding a covariance check says nothing, so no allowance
    # beyond float32's is given
    return 10 * p * min(eps, float(np.finfo(np.float32).eps)) if eps else 0.0


def _at_input_rounding(A: Arithmetic, moments) -> Arithmetic:
    """``A``, or for moments given in a float type coarser than float64 (float32, as torch
    computes them) a numeric arithmetic whose tolerance is their rounding (:func:`_rounding`):
    a rank decided at ``1e-8`` would count float32's rounding (singular values near ``1e-7``
    of the largest, of either sign) as rank, and whiten by the square root of a rounding
    error below zero. Capped below :data:`~conceptid.identifiability.linalg.RTOL_MAX`;
    float64 input, exact arithmetic and a caller's own subclass of ``Numeric`` are left as
    they are."""
    if type(A) is not Numeric:  # exact, or a caller's own arithmetic: as it is
        return A
    coarse = [cov for _, cov in moments if _float_eps(cov) > np.finfo(np.float64).eps]
    r = max((_rounding(cov, int(np.shape(cov)[0])) for cov in coarse), default=0.0)
    return A if r <= A.rtol else Numeric(min(r, RTOL_MAX / 10))


def _float_eps(cov) -> float:
    """The machine epsilon of ``cov``'s float type, a numpy array or a CPU tensor (0 for
    anything else: lists, exact matrices, integers)."""
    try:
        dtype = np.asarray(cov).dtype if hasattr(cov, "dtype") else None
    except (TypeError, ValueError, RuntimeError):
        return 0.0
    if dtype is None or not np.issubdtype(dtype, np.floating):
        return 0.0
    return float(np.finfo(dtype).eps)


def _coordinates(mats, obs: int, K: int, A: Arithmetic):
    """Step 1: ``y = T x``, ``d = rank Sigma_0`` coordinates that are an invertible linear
    function of ``(c, n)`` (:meth:`Arithmetic.coordinates`), and every context's moments of
    ``y``."""
    to_y = A.coordinates(mats[obs][1])
    d = A.shape(to_y)[0]
    ys = [(A.mul(to_y, mu), A.mul(A.mul(to_y, S), A.T(to_y))) for mu, S in mats]
    if d < K:
        raise IdentificationError(f"rank of the observational covariance {d} < K = {K}")
    return to_y, ys


def _precision_changes(ys, obs: int, ctx_of: dict, ks: list[int], A: Arithmetic) -> dict:
    """Step 2: ``L_k``, the linear parts of the row space of ``Delta_k = Psi_k - Psi_0``
    (:meth:`Arithmetic.leading_row_space`; at most ``2 k_j`` directions)."""
    y0 = ys[obs][0]
    psis = [homogeneous_precision(A.recentre(mu, y0), S, A) for mu, S in ys]
    d = A.shape(ys[obs][1])[0]
    return {
        j: A.leading_row_space(A.sub(psis[ctx_of[j]], psis[obs]), d, 2 * ks[j])
        for j in range(len(ks))
    }


def _peel(
    L: dict, ys, ctx_of: dict, ks: list[int], A: Arithmetic, peel_order, cache: dict | None = None
) -> tuple:
    """Step 3: the read-out block ``H_j`` of every concept, peeled in a causal order.

    With a ``peel_order``, the block peeled at a position depends only on the order up to it:
    ``cache`` (a dict kept by the caller across orders) maps each such prefix to its block, or
    to the message of the error it raised, so orders that share a prefix peel it once, with the
    same result. Prefixes of ``m - 1`` or more concepts fix the whole order, which a search
    peels once: they are not kept."""
    m = len(ks)
    H: dict = {}
    order: list[int] = []
    remaining = set(range(m))
    while remaining:
        shared = cache is not None and peel_order is not None and len(H) + 1 < m - 1
        key = tuple(peel_order[: len(H) + 1]) if shared else None
        found = cache.get(key) if shared else None
        if found is None:
            try:
                found = _peel_next(L, ys, ctx_of, ks, A, H, order, remaining, peel_order)
            except IdentificationError as err:
                if shared:
                    cache[key] = str(err)
                raise
            if shared:
                cache[key] = found
        if isinstance(found, str):  # this prefix failed for an earlier order: a fresh error
            raise IdentificationError(found)
        j, P = found
        H[j] = P
        order.append(j)
        remaining.discard(j)
    return H, order


def _peel_next(
    L: dict,
    ys,
    ctx_of: dict,
    ks: list[int],
    A: Arithmetic,
    H: dict,
    order: list,
    remaining: set,
    peel_order,
) -> tuple:
    """One step of :func:`_peel`: ``(j, H_j)``, the next concept and its read-out block."""
    HS = A.vstack(*[H[s] for s in order]) if order else None
    candidates = sorted(remaining) if peel_order is None else [peel_order[len(H)]]
    j, P = _next_concept(L, HS, candidates, ks, A)
    if j is None:
        raise IdentificationError(
            f"no concept among {sorted(remaining)} can be identified next: the moments do "
            "not fit Theorem L's assumptions (A4-A7+, linear mixing)"
        )
    if HS is not None:
        P = _uncorrelated_part(P, HS, ys[ctx_of[j]][1], A)
    if A.rank(P) != ks[j]:
        raise IdentificationError(f"concept {j}: identified block has rank < {ks[j]}")
    return j, P


def _next_concept(L: dict, HS, candidates, ks: list[int], A: Arithmetic) -> tuple:
    """The candidate whose ``L_j`` adds ``k_j`` directions to ``span H_S`` most cleanly (the
    first of the best scores), with those directions; ``(None, None)`` when none does."""
    best, best_score, best_P = None, None, None
    for j in candidates:
        found = A.new_directions(L[j], HS, ks[j])
        if found is None:
            continue
        P, score = found
        if best_score is None or score < best_score:
            best, best_score, best_P = j, score, P
        if score == 0:  # cannot be beaten
            break
    return best, best_P


def _uncorrelated_part(P, HS, Sk, A: Arithmetic):
    """``Z = P (I - Sigma_k H_S^T (H_S Sigma_k H_S^T)^-1 H_S)``: the part of ``span(P, H_S)``
    that is uncorrelated with ``H_S y`` in context ``k`` (Lemma 4)."""
    SH = A.mul(Sk, A.T(HS))
    proj = A.mul(A.mul(SH, A.inv(A.mul(HS, SH))), HS)
    return A.sub(P, A.mul(P, proj))


def _slices(ks: list[int]) -> list[list[int]]:
    offsets = np.concatenate([[0], np.cumsum(ks)]).astype(int)
    return [list(range(offsets[j], offsets[j + 1])) for j in range(len(ks))]


def _sem(Hc, obs_moments, order: list[int], ks: list[int], A: Arithmetic, edge_tol: float):
    """Step 4: each block regressed on its predecessors in the observational concept moments:
    weights ``B``, noise means and covariances, and the graph (a weight block is an edge when
    :meth:`Arithmetic.exceeds` ``edge_tol``)."""
    m, K = len(ks), sum(ks)
    sl = _slices(ks)
    mu0 = A.mul(Hc, obs_moments[0])
    S0c = A.mul(A.mul(Hc, obs_moments[1]), A.T(Hc))
    B = np.zeros((K, K))
    noise_mean = np.zeros(K)
    noise_cov: list = [None] * m
    adjacency = np.zeros((m, m), dtype=bool)
    for pos, j in enumerate(order):
        prev = [i for q in order[:pos] for i in sl[q]]
        Sjj = A.rows(A.cols(S0c, sl[j]), sl[j])
        muj = A.rows(mu0, sl[j])
        if prev:
            Sjp = A.rows(A.cols(S0c, prev), sl[j])
            Spp = A.rows(A.cols(S0c, prev), prev)
            W = A.mul(Sjp, A.inv(Spp))
            Sjj = A.sub(Sjj, A.mul(W, A.T(Sjp)))
            muj = A.sub(muj, A.mul(W, A.rows(mu0, prev)))
            B[np.ix_(sl[j], prev)] = A.to_float(W)
            for q in order[:pos]:
                edge = A.exceeds(A.cols(W, [prev.index(i) for i in sl[q]]), edge_tol)
                adjacency[q, j] = edge
                if not edge:
                    B[np.ix_(sl[j], sl[q])] = 0.0
        noise_mean[sl[j]] = A.to_float(muj).reshape(-1)
        noise_cov[j] = A.to_float(Sjj)
    return B, noise_mean, noise_cov, adjacency


def _intervention_laws(Hc, ys, ctx_of: dict, ks: list[int], A: Arithmetic) -> tuple[dict, dict]:
    """Each concept's law in its intervention context, in the identified coordinates."""
    sl = _slices(ks)
    int_mean, int_cov = {}, {}
    for j in range(len(ks)):
        mu_k, S_k = ys[ctx_of[j]]
        muc = A.mul(Hc, mu_k)
        Sc = A.mul(A.mul(Hc, S_k), A.T(Hc))
        int_mean[j] = A.to_float(A.rows(muc, sl[j])).reshape(-1)
        int_cov[j] = A.to_float(A.rows(A.cols(Sc, sl[j]), sl[j]))
    return int_mean, int_cov


def identify_linear_ml(
    moments: Sequence[tuple],
    targets: Sequence[int | None],
    block_sizes: Sequence[int],
    counts: Sequence[int],
    *,
    edge_tol: float = 0.1,
    names: Sequence[str] | None = None,
    max_exhaustive: int = 6,
) -> IdentifiedModel:
    """:func:`identify_linear` on sample moments, the peel order chosen by maximum likelihood.

    The greedy peeling decides each next concept by how close a precision change is to rank
    ``k_j``. A small *nonlinear* distortion of the moments can flip one of those decisions
    and mix concepts: on the ladder's L3 concepts (seed 1), a 3% ``tanh`` distortion drops one
    concept's R^2 to 0.37, while Gaussian noise of the same size leaves every concept above 0.99
    (``benchmarks/bench_peel_robustness.py``). Here each candidate order is peeled and scored by
    the Gaussian log-likelihood of all contexts' moments under the identified model (concepts
    from the identified SEM; the complement of the read-out an invariant standard normal,
    independent of the concepts), and the best is returned. On population moments of a model
    that satisfies the assumptions a causal order fits exactly, so it is chosen.

    Candidates: every order when ``m <= max_exhaustive``; otherwise a hill climb from the greedy
    order, moving one concept to another position while the likelihood improves.
    ``counts``: the number of samples behind each context's moments (their weights).

    Raises
    ------
    IdentificationError
        Before any work: ``counts`` not a positive integer per context, ``max_exhaustive`` not
        an integer >= 0, or any input :func:`identify_linear` refuses (checked once here, in
        numeric arithmetic, so that bad input is named rather than read as no order fitting);
        after: no peel order fits the assumptions.
    """
    A = Numeric()
    edge_tol, ks, obs, ctx_of, mats, _ = _checked(moments, targets, block_sizes, A, edge_tol,
                                                  None)  # fmt: skip
    A = _at_input_rounding(A, moments)
    m = len(ks)
    if len(counts) != len(moments) or not all(map(is_number, counts)):
        raise IdentificationError(
            f"counts must give a positive sample count for each of the {len(moments)} contexts"
        )
    check_number(max_exhaustive, "max_exhaustive", minimum=0, error=IdentificationError)
    white = _whitened(moments, obs)  # the same for every order
    try:  # steps 1-2 and the whitening do not depend on the order: done once
        prepared = _Prepared(ks, obs, ctx_of, *_order_free(mats, obs, ctx_of, ks, A))
    except (IdentificationError, np.linalg.LinAlgError):  # then no order fits (below)
        prepared = None
    cache: dict = {}  # peeled prefixes, shared between orders

    def peel(order):
        if prepared is None:
            return None, -np.inf
        try:
            ident = _identify(prepared, A, edge_tol, names, order, cache)
        except (IdentificationError, np.linalg.LinAlgError):
            return None, -np.inf
        return ident, _gaussian_loglik(ident, white, targets, block_sizes, counts)

    greedy, best_ll = peel(None)
    best = greedy
    if m <= max_exhaustive:
        for order in itertools.permutations(range(m)):
            ident, ll = peel(list(order))
            if ll > best_ll:
                best, best_ll = ident, ll
    elif greedy is not None:
        order, improved = list(greedy.order), True
        seen: dict = {}  # moving i to i + 1 or i + 1 to i is one swap: peel each order once
        while improved:
            improved = False
            for i, j in itertools.permutations(range(m), 2):
                cand = order[:i] + order[i + 1 :]
                cand.insert(j, order[i])
                key = tuple(cand)
                if key not in seen:
                    seen[key] = peel(cand)
                ident, ll = seen[key]
                if ll > best_ll + 1e-9:
                    best, best_ll, order, improved = ident, ll, cand, True
    if best is None:
        raise IdentificationError(
            "no peel order fits Theorem L's assumptions (A4-A7+, linear mixing)"
        )
    return best


def _whitened(moments, obs: int):
    """Whitening of the observational context, ``y = W x`` (``d`` = rank of its covariance):
    a right inverse ``W^+`` of ``W`` (``W W^+ = I_d``), the observational mean of ``y`` and
    every context's ``y`` moments."""
    to_y, from_y = Numeric().whitening(moments[obs][1])
    ys = [(to_y @ np.ravel(m), to_y @ np.asarray(S, float) @ to_y.T) for m, S in moments]
    return from_y, ys[obs][0], ys


def _gaussian_loglik(ident, white, targets, block_sizes, counts) -> float:
    """Gaussian log-likelihood (up to a constant) of every context's sample moments under
    ``ident``, in the coordinates ``(c, n) = (H x, N x)``: ``N`` spans the observational
    complement of the read-out, whitened, with its observational mean, the same in every
    context. Includes ``log |det|`` of the map, so read-outs from different orders compare.
    ``white``: :func:`_whitened` of the moments."""
    ks = [int(k) for k in block_sizes]
    off = np.concatenate([[0], np.cumsum(ks)]).astype(int)
    K = off[-1]
    from_y, y0, ys = white
    d = from_y.shape[1]
    Hc = ident.readout @ from_y  # (K, d): concepts from whitened coordinates
    N = np.linalg.svd(Hc)[2][K:]  # orthonormal complement: uncorrelated with c in obs
    M = np.vstack([Hc, N])
    sign, logdet_M = np.linalg.slogdet(M)
    if sign == 0:
        return -np.inf
    n_mean = N @ y0
    total = 0.0
    B0 = np.array(ident.weights, float)
    mu0 = np.ravel(ident.noise_mean).astype(float)
    V0 = np.zeros((K, K))
    for j in range(len(ks)):
        V0[off[j] : off[j + 1], off[j] : off[j + 1]] = np.atleast_2d(ident.noise_cov[j])
    for (ym, yS), t, n in zip(ys, targets, counts):
        B, mu, V = B0.copy(), mu0.copy(), V0.copy()
        if t is not None:
            sl = slice(off[t], off[t + 1])
            B[sl] = 0.0
            mu[sl] = np.ravel(ident.intervention_mean[t])
            V[sl, sl] = np.atleast_2d(ident.intervention_cov[t])
        A = np.linalg.inv(np.eye(K) - B)
        Sz = np.zeros((d, d))
        Sz[:K, :K] = A @ V @ A.T
        Sz[K:, K:] = np.eye(d - K)
        mz = np.concatenate([A @ mu, n_mean])
        dz = M @ ym - mz
        sign, logdet = np.linalg.slogdet(Sz)
        if sign <= 0:
            return -np.inf
        P = np.linalg.inv(Sz)
        quad = np.trace(P @ M @ yS @ M.T) + dz @ P @ dz
        total += int(n) * (logdet_M - 0.5 * (logdet + quad))
    return float(total)
