"""Hypothesis strategies for models that satisfy, or violate exactly one of, the assumptions.

Public API; every strategy composes the ones above it. Numbers are *dyadic* (``k / 2^r``), so
they are exact binary floats and the exact arithmetic of :func:`conceptid.identifiability.check`
sees the
very model that was sampled. Bounds (documented so that generated problems are well posed):

- SEM edge weights: magnitude in ``[1/2, 2]``, random sign (bounded away from zero);
- noise variances in ``[1/2, 2]``; noise means in ``[-1, 1]``;
- hard interventions: mean in ``[-2, 2]``, variance in ``[1/2, 2]``; for a source the pair
  differs from its noise law (so A7 holds), and for a block the law uses every direction of
  its mechanism (A7+, decided by the package's exact predicate; see
  :func:`hard_interventions`);
- read-outs ``T = I + E`` with ``|E_ij| <= 1 / (2 d)``: ``||E||_2 <= 1/2``, so the singular values
  of ``T`` lie in ``[1/2, 3/2]`` (condition number <= 3);
- linear mixings ``A = [I + E; F]`` with ``|E_ij| <= 1 / (2 d)`` and ``|F_ij| <= 1/2``: full
  column rank with smallest singular value >= 1/2;
- ``mixing="mlp"``: an invertible two-layer MLP with the smooth activation (a leaky ReLU is not
  differentiable at 0, so it fails A3 as stated).

``models(violate=...)``: ``None`` (A0-A7 and A7+ hold: the contexts are the observational one
and one hard intervention per concept), ``"A4"`` (tanh mechanisms; A7+ is then not evaluated,
being defined for linear SEMs), ``"A6"`` (one concept that has a non-descendant loses its
intervention context; A7+ still holds), ``"A7"`` (an extra isolated source with zero noise mean
and an identity intervention, plus a nuisance dimension; A7+ fails with it, since A7+ implies
A7, Lemma 3 (b)). Every other assumption holds, as the package's exact predicates decide
(``tests/test_soundness_hunt.py`` checks this over many draws). ``"A2"``
raises: by Lemma 2 no model violates A2 while satisfying A4. A1 and A5 hold by construction of a
:class:`~conceptid.simulations.model.ConceptModel`; A3 fails for a leaky-ReLU MLP (not
differentiable) and
for the quad renderer (see the ``quad`` preset). Designs without an observational context (A0),
with soft or shift interventions, and under other mixings are drawn by the soundness suite
(``tests/test_soundness.py``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

from conceptid.simulations.errors import UsageError
from conceptid.simulations.graphs import DAG
from conceptid.simulations.interventions import Context, Hard
from conceptid.simulations.mixing import LinearMixing, MLPMixing
from conceptid.simulations.model import ConceptModel
from conceptid.simulations.sem import SEM

from .assumptions import a7plus_ranks
from .linalg import Exact

__all__ = [
    "dags",
    "dyadic",
    "hard_interventions",
    "linear_mixings",
    "models",
    "readouts",
    "sems",
]


def dyadic(lo: float, hi: float, bits: int = 3) -> st.SearchStrategy[float]:
    """Floats ``k / 2^bits`` in ``[lo, hi]`` (exactly representable)."""
    scale = 2**bits
    return st.integers(int(np.ceil(lo * scale)), int(np.floor(hi * scale))).map(lambda k: k / scale)


@st.composite
def dags(draw, min_nodes: int = 2, max_nodes: int = 5, edge_prob: float = 0.5) -> DAG:
    """A DAG on ``c0..c{m-1}``: edges forward in a random order, each with ``edge_prob``."""
    m = draw(st.integers(min_nodes, max_nodes))
    perm = draw(st.permutations(range(m)))
    A = np.zeros((m, m), dtype=bool)
    for a in range(m):
        for b in range(a + 1, m):
            if draw(st.floats(0, 1)) < edge_prob:
                A[perm[a], perm[b]] = True
    return DAG(A)


def _weight() -> st.SearchStrategy[float]:
    return st.tuples(dyadic(0.5, 2.0), st.sampled_from([-1.0, 1.0])).map(lambda t: t[0] * t[1])


@st.composite
def sems(draw, graph: DAG, block_size: int = 1) -> SEM:
    """A linear Gaussian SEM on ``graph`` with the documented bounds (diagonal noise)."""
    ks = (block_size,) * graph.m
    K = sum(ks)
    B = np.zeros((K, K))
    off = np.arange(graph.m) * block_size
    for i, j in zip(*np.nonzero(graph.adjacency)):
        for r in range(block_size):
            for c in range(block_size):
                B[off[j] + r, off[i] + c] = draw(_weight()) if r == c else 0.0
    mean = np.array([draw(dyadic(-1, 1)) for _ in range(K)])
    covs = tuple(np.diag([draw(dyadic(0.5, 2.0)) for _ in range(k)]) for k in ks)
    return SEM(graph, B, mean, covs, ks)


@st.composite
def hard_interventions(draw, sem: SEM, targets=None) -> tuple[Context, ...]:
    """Observational context plus one hard intervention per target (default all) that changes
    its target's mechanism (A7) and, for a block, uses every direction of it (A7+), both as the
    package's exact predicates decide them (:func:`~.assumptions.a7plus_ranks`; for a scalar
    concept A7+ is A7, Lemma 3 (c)).

    For a block, an intervention law drawn too close to the noise law (a variance equal to the
    noise's in more than one coordinate, or a mean-only shift of a source: Lemma 3 (d)) misses
    directions of the mechanism; such a draw has each variance moved off the noise variance
    (``+ 1/2``, or ``- 1/4`` where that passes ``2``), and a draw that still fails the exact
    predicate is rejected (hypothesis draws again)."""
    targets = range(sem.m) if targets is None else targets
    out = [Context.observational()]
    for j in targets:
        k = sem.block_sizes[j]
        sl = sem.slices[j]
        mean = np.array([draw(dyadic(-2, 2)) for _ in range(k)])
        var = np.array([draw(dyadic(0.5, 2.0)) for _ in range(k)])
        same = np.array_equal(mean, sem.noise_mean[sl]) and np.array_equal(
            np.diag(var), sem.noise_cov[j]
        )
        if same and not sem.graph.parents(j):
            # a source intervened with its own noise law would violate A7: move the mean by 1
            mean = np.where(mean <= 1, mean + 1, mean - 1)
        ctx = Context((Hard(sem.names[j], mean, np.diag(var)),))
        if k > 1 and not _a7plus(sem, j, ctx):
            noise = np.diag(sem.noise_cov[j])
            var = np.where(var == noise, np.where(var + 0.5 <= 2.0, var + 0.5, var - 0.25), var)
            ctx = Context((Hard(sem.names[j], mean, np.diag(var)),))
            if not _a7plus(sem, j, ctx):
                reject()
        out.append(ctx)
    return tuple(out)


def _a7plus(sem: SEM, j: int, ctx: Context) -> bool:
    """A7+ for the hard intervention ``ctx`` on ``j``, decided exactly (the package's predicate;
    the strategy's numbers are dyadic, so exact arithmetic reads the model drawn)."""
    got, need = a7plus_ranks(sem, j, ctx, Exact())
    return got == need


def _dyadic_matrix(seed: int, shape: tuple[int, int], bound: float, bits: int) -> np.ndarray:
    """Entries ``k / 2^bits`` uniform in ``[-bound, bound]``, from a seed (matrices are drawn
    through a seed to keep hypothesis's examples small; the structure above them shrinks)."""
    scale = 2**bits
    top = int(np.floor(bound * scale))
    return np.random.default_rng(seed).integers(-top, top + 1, size=shape) / scale


@st.composite
def readouts(draw, d: int) -> np.ndarray:
    """``T = I + E`` with ``|E_ij| <= 1/(2d)`` (dyadic): condition number <= 3."""
    seed = draw(st.integers(0, 2**32 - 1))
    return np.eye(d) + _dyadic_matrix(seed, (d, d), 1.0 / (2 * d), 8)


@st.composite
def linear_mixings(draw, d: int, p: int) -> LinearMixing:
    """``A = [I + E; F]`` (``p >= d``): full column rank, smallest singular value >= 1/2."""
    top = draw(readouts(d))
    F = _dyadic_matrix(draw(st.integers(0, 2**32 - 1)), (p - d, d), 0.5, 3)
    return LinearMixing(np.vstack([top, F]))


def models(
    min_concepts: int = 2,
    max_concepts: int = 4,
    max_nuisance: int = 2,
    mixing: str = "linear",
    block_size: int = 1,
    violate: str | None = None,
) -> st.SearchStrategy[ConceptModel]:
    """:class:`ConceptModel` s satisfying A1-A7 (``violate=None``) or violating exactly one of
    ``"A4"``, ``"A6"``, ``"A7"`` (see the module docstring). Raises ``UsageError`` at once for an
    assumption no such model can violate alone."""
    if violate == "A2":
        raise UsageError(
            "no model violates A2 alone: under A1 and A4, Cov(c) = C Cov(e) C^T is positive "
            "definite, so rank C = K (proofs/lemma_a2_redundant.md)"
        )
    if violate not in (None, "A4", "A6", "A7"):
        raise UsageError(
            f"violate must be None, 'A4', 'A6' or 'A7', got {violate!r} (A1 and A5 hold by "
            "construction of a ConceptModel; A3 fails for leaky-ReLU and image mixings)"
        )
    if mixing not in ("linear", "mlp"):
        raise UsageError(f"mixing must be 'linear' or 'mlp', got {mixing!r}")
    return _models(min_concepts, max_concepts, max_nuisance, mixing, block_size, violate)


@st.composite
def _models(draw, min_concepts, max_concepts, max_nuisance, mixing, block_size, violate):
    graphs = dags(min_concepts, max_concepts)
    if violate == "A6":  # the concept that loses its context needs a non-descendant
        graphs = graphs.filter(_has_nondescendant_pair)
    graph = draw(graphs)
    sem = draw(sems(graph, block_size))
    if violate == "A4":
        sem = SEM(sem.graph, sem.weights, sem.noise_mean, sem.noise_cov, sem.block_sizes,
                  sem.noise_family, "tanh")  # fmt: skip
    nuisance = draw(st.integers(0, max_nuisance))
    contexts = draw(hard_interventions(sem))
    if violate == "A6":
        choices = [j for j in range(sem.m) if _nondescendants(sem.graph, j)]
        j = draw(st.sampled_from(choices))
        contexts = tuple(c for c in contexts if sem.names[j] not in c.targets)
    if violate == "A7":
        sem, contexts = _add_identity_source(sem, contexts, block_size)
        nuisance = max(nuisance, 1)
    d = sem.K + nuisance
    T = draw(readouts(d))
    if mixing == "linear":
        p = draw(st.integers(d, d + 2))
        f = draw(linear_mixings(d, p))
    else:
        seed = draw(st.integers(0, 2**16))
        # smooth activation: A3 asks for a differentiable f (leaky ReLU has a kink at 0)
        f = MLPMixing.random(d, d + 2, np.random.default_rng(seed), n_layers=2, activation="smooth")
    return ConceptModel(sem, f, T, nuisance, 1.0, contexts)


def _nondescendants(graph: DAG, j: int) -> list[int]:
    desc = graph.descendants(j)
    return [i for i in range(graph.m) if i != j and i not in desc]


def _has_nondescendant_pair(graph: DAG) -> bool:
    return any(_nondescendants(graph, j) for j in range(graph.m))


def _add_identity_source(sem: SEM, contexts, block_size: int):
    """Append an isolated source ``z`` with noise N(0, 1) and the identity hard intervention."""
    m, K, k = sem.m, sem.K, block_size
    A = np.zeros((m + 1, m + 1), dtype=bool)
    A[:m, :m] = sem.graph.adjacency
    graph = DAG(A, (*sem.names, "z"))
    B = np.zeros((K + k, K + k))
    B[:K, :K] = sem.weights
    sem2 = SEM(graph, B, np.concatenate([sem.noise_mean, np.zeros(k)]),
               (*sem.noise_cov, np.eye(k)), (*sem.block_sizes, k))  # fmt: skip
    return sem2, (*contexts, Context((Hard("z", np.zeros(k), np.eye(k)),)))
