"""The soundness suite: ``check()`` must never be wrong (issue #10).

Hypothesis draws designs with and without an observational context; hard, identity-hard, soft
and shift interventions, duplicated and multi-target contexts; scalar concepts and blocks;
linear, smooth-MLP and leaky-ReLU-MLP mixings. For every verdict of ``check``:

- **identifiable**: a search for a second linear Gaussian model with the same law of ``e`` (hence
  of ``x``) in every training context, started outside the class for several causal orders and
  spreads (:class:`_independent.SecondModelSearch`), finds none: every start either stays
  clearly above the numeric tolerance or lands back in the class for that concept;
- **not identifiable**: the witness is re-verified independently (:mod:`_independent`: the
  simulations layer's own population moments, or the map's density and Jacobian at random
  points) in every training context, and the concept is outside the class;
- **not covered**: the reason names what fails; a failed confirmation while the theorem's
  hypotheses hold is a defect, and fails the suite.

Profiles: the default (``make test``) draws ``DEFAULT_EXAMPLES`` designs, derandomised; set
``CONCEPTID_SOUNDNESS=long`` for ``LONG_EXAMPLES`` random ones with every causal order and three
spreads per search. Sizes and times are in docs/identifiability.md ("The soundness suite").
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _independent import (
    SecondModelSearch,
    concept_class_residuals,
    reverify_linear,
    reverify_transform,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conceptid.identifiability import IDENTIFIABLE, NOT_COVERED, NOT_IDENTIFIABLE, check
from conceptid.identifiability.strategies import dags, dyadic, linear_mixings, readouts
from conceptid.simulations import (
    DAG,
    SEM,
    ConceptModel,
    Context,
    Hard,
    LinearMixing,
    MLPMixing,
    Shift,
    Soft,
)

LONG = os.environ.get("CONCEPTID_SOUNDNESS", "") == "long"
DEFAULT_EXAMPLES, LONG_EXAMPLES = 200, 1000
PROFILE = settings(
    max_examples=LONG_EXAMPLES if LONG else DEFAULT_EXAMPLES,
    derandomize=not LONG,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: a start whose discrepancy (sum of squared relative residuals) ends below this has found a
#: model with the same laws, up to the optimiser's precision (exact solutions end near 1e-30)
SAME_LAWS = 1e-12
#: ... and then it must be in the class for every concept called identifiable
IN_CLASS = 1e-4


def _search_orders(m: int, rng) -> list[tuple[int, ...]] | None:
    """Every causal order in the long profile and for m <= 2; else three, at random."""
    if LONG or m <= 2:
        return None
    from itertools import permutations

    every = list(permutations(range(m)))
    return [every[i] for i in rng.choice(len(every), 3, replace=False)]


# -- designs ------------------------------------------------------------------------------------


@st.composite
def _intervention(draw, sem: SEM, j: int, kind: str):
    name, k, sl = sem.names[j], sem.block_sizes[j], sem.slices[j]
    parents = sem.graph.parents(j)
    if kind == "soft" and not parents:
        kind = "shift"
    if kind == "identity":  # the target's own noise law: A7 fails for a source
        return Hard(name, sem.noise_mean[sl], sem.noise_cov[j])
    if kind == "shift":
        return Shift(name, [draw(dyadic(-2, 2)) for _ in range(k)])
    if kind == "soft":
        p = draw(st.sampled_from(parents))
        kp = sem.block_sizes[p]
        w = np.diag([draw(dyadic(-2, 2)) for _ in range(min(k, kp))])
        W = np.zeros((k, kp))
        W[: w.shape[0], : w.shape[1]] = w
        return Soft(name, {sem.names[p]: W}, cov=np.diag([draw(dyadic(0.5, 2)) for _ in range(k)]))
    zero = draw(st.booleans())  # zero means exercise N7's reflection
    mean = [0.0 if zero else draw(dyadic(-2, 2)) for _ in range(k)]
    return Hard(name, mean, np.diag([draw(dyadic(0.5, 2)) for _ in range(k)]))


@st.composite
def _sem(draw, graph: DAG, sizes: tuple[int, ...]) -> SEM:
    """A linear Gaussian SEM on ``graph`` with blocks of the given sizes: every edge a nonzero
    dyadic block, noise means zero a third of the time (N2, N5, N7 need them), covariances
    diagonal or isotropic (N5 needs that)."""
    K = sum(sizes)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    B = np.zeros((K, K))
    for i, j in zip(*np.nonzero(graph.adjacency)):
        # a zero block now and then: a declared edge without weight is not in B's support
        W = np.array([[draw(dyadic(-2, 2)) for _ in range(sizes[i])] for _ in range(sizes[j])])
        B[off[j] : off[j + 1], off[i] : off[i + 1]] = W
    mean = np.concatenate(
        [np.zeros(k) if draw(st.integers(0, 2)) == 0 else
         np.array([draw(dyadic(-1, 1)) for _ in range(k)]) for k in sizes]
    )  # fmt: skip
    covs = []
    for k in sizes:
        if draw(st.booleans()):
            covs.append(draw(dyadic(0.5, 2)) * np.eye(k))
        else:
            covs.append(np.diag([draw(dyadic(0.5, 2)) for _ in range(k)]))
    return SEM(graph, B, mean, tuple(covs), sizes)


@st.composite
def designs(draw) -> ConceptModel:
    mixing = draw(st.sampled_from(["linear", "linear", "smooth", "leaky"]))
    m = draw(st.integers(1, 3))
    sizes = (1,) * m
    if draw(st.integers(0, 3)) == 0:  # blocks: sizes 1 or 2, at most four coordinates
        sizes = tuple(draw(st.lists(st.integers(1, 2), min_size=m, max_size=m)))
        while sum(sizes) > 4:
            sizes = sizes[:-1]
        m = len(sizes)
    graph = draw(dags(min_nodes=m, max_nodes=m))
    sem = draw(_sem(graph, sizes))
    nuisance = draw(st.integers(0, 1))
    contexts = [Context.observational()] if draw(st.integers(0, 2)) else []
    for j in range(m):
        kind = draw(st.sampled_from(["hard", "hard", "hard", "soft", "shift", "identity", "none"]))
        if kind != "none":
            contexts.append(Context((draw(_intervention(sem, j, kind)),)))
    for _ in range(draw(st.integers(0, 1))):  # a duplicated or a multi-target context
        targets = draw(st.sets(st.integers(0, m - 1), min_size=1, max_size=min(2, m)))
        contexts.append(Context(tuple(draw(_intervention(sem, j, "hard")) for j in targets)))
    if not contexts:
        contexts.append(Context.observational())
    contexts = [Context(c.interventions, f"k{i}:{c.name}") for i, c in enumerate(contexts)]
    d = sem.K + nuisance
    T = draw(readouts(d))
    if mixing == "linear":
        f = draw(linear_mixings(d, d + 1))
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        act = "smooth" if mixing == "smooth" else "leaky_relu"
        f = MLPMixing.random(d, d + 1, rng, n_layers=2, activation=act)
    return ConceptModel(sem, f, T, nuisance, 1.0, tuple(contexts))


# -- the properties ---------------------------------------------------------------------------


def _assert_sound(model: ConceptModel, method: str, seed: int, note=event) -> dict:
    """Check ``model`` and assert the properties above for each verdict; ``note`` records each
    verdict (hypothesis statistics). Returns the verdicts."""
    report = check(model, method)
    str(report)
    json.loads(report.to_json())
    sem = model.sem
    index = {name: j for j, name in enumerate(sem.names)}
    identifiable = []
    note(f"design: {sem.m} concepts, K = {sem.K}, {model.mixing.kind} mixing")
    for v in report.concepts:
        j = index[v.concept]
        note(f"verdict: {v.status}" + (f" ({v.witness.kind})" if v.witness else ""))
        if v.status == NOT_IDENTIFIABLE:
            w = v.witness
            assert w is not None and w.verification.ok and v.concept in w.concepts
            assert w.verification.contexts == [c.name for c in model.contexts]
            if w.model_b is not None:
                equal, outside, gap = reverify_linear(w)
                moved = concept_class_residuals(model.C, w.model_b.C, sem.slices)[j]
                assert moved > 1e-6, f"{v.concept} is in the class in witness {w.kind}"
            else:
                equal, outside, gap = reverify_transform(w)
            assert equal and outside, f"witness {w.kind} fails re-verification ({gap:.3g})"
        elif v.status == IDENTIFIABLE:
            identifiable.append(j)
        else:
            assert v.status == NOT_COVERED
            assert "confirming identification run failed" not in v.reason, (
                f"the theorem's hypotheses hold but its algorithm fails: {v.reason}"
            )
            assert v.reason.startswith(("hypotheses fail: ", "blocks under nonlinear mixing"))
    if identifiable:
        assert all(report.assumptions[a].holds for a in ("A0", "A1", "A3", "A4", "A6", "A7"))
        rng = np.random.default_rng(seed)
        search = SecondModelSearch(model)
        spreads = (0.5, 1.5, 4.0) if LONG else (0.5, 4.0)
        for cost, residuals, order in search.run(rng, _search_orders(sem.m, rng), spreads):
            if cost < SAME_LAWS:
                bad = [sem.names[j] for j in identifiable if residuals[j] > IN_CLASS]
                assert not bad, (
                    f"a second model with the same laws (discrepancy {cost:.2g}, order {order}) "
                    f"moves {bad} out of the class: residuals {residuals}"
                )
    return {v.concept: v.status for v in report.concepts}


@PROFILE
@given(designs(), st.sampled_from(["exact", "numeric"]), st.integers(0, 2**16))
def test_check_is_sound(model, method, seed):
    _assert_sound(model, method, seed)


# -- the search finds second models where they exist ----------------------------------------------


def _chain(contexts, nuisance=0, weight=1.0):
    g = DAG.from_edges([("a", "b")])
    B = np.zeros((2, 2))
    B[1, 0] = weight
    sem = SEM(g, B, np.zeros(2), (np.eye(1), np.eye(1)))
    d = 2 + nuisance
    return ConceptModel(sem, LinearMixing(np.eye(d + 1, d)), None, nuisance, 1.0, contexts)


DO_A, DO_B = Context((Hard("a", 0.5, 2.0),)), Context((Hard("b", 0.0, 3.0),))


@pytest.mark.parametrize(
    ("name", "model", "moved"),
    [
        ("N7: no observational context", _chain((DO_A, DO_B)), {"a", "b"}),
        ("N1, root case: no do(a)", _chain((Context.observational(), DO_B)), {"a", "b"}),
        ("N1: no do(b)", _chain((Context.observational(), DO_A)), {"b"}),
        ("N4: observational only", _chain((Context.observational(),), nuisance=1), {"a", "b"}),
    ],
)
def test_the_search_finds_the_second_models_that_exist(name, model, moved):
    # the search's power: on designs with a verified witness it finds, by itself, a second model
    # with the same laws that moves the same concepts out of the class
    report = check(model, "exact")
    assert {c.concept for c in report.concepts if c.status == NOT_IDENTIFIABLE} == moved, name
    found = set()
    for cost, residuals, _ in SecondModelSearch(model).run(np.random.default_rng(0)):
        if cost < SAME_LAWS:
            found |= {model.sem.names[j] for j in range(2) if residuals[j] > 1e-2}
    assert found == moved, name


def test_the_referees_designs_and_the_block_witnesses_are_sound():
    from conceptid.simulations import random_readout

    designs_ = [
        _chain((DO_A, DO_B)),
        _chain((Context.observational(), Context((Shift("a", 1.0),)), Context((Shift("b", 1.0),)))),
        _chain((Context.observational(), DO_A, DO_B), nuisance=1),
    ]
    # N6 (A7+ fails for a block under linear mixing) and N5 (an isotropic block under a
    # nonlinear one): the witnesses the random designs rarely reach
    rng = np.random.default_rng(0)
    g = DAG.from_edges([("p", "k")])
    B = np.zeros((3, 3))
    B[1, 0], B[2, 0] = 1.0, 0.5
    sem = SEM(g, B, np.zeros(3), (np.eye(1), np.eye(2)), (1, 2))
    ctxs = (Context.observational(), Context((Hard("p", 1.0, 2.0),)),
            Context((Hard("k", [0, 0], np.eye(2)),)))  # fmt: skip
    designs_.append(ConceptModel(sem, LinearMixing.random(4, 6, rng), random_readout(3, 4, rng),
                                 1, 1.0, ctxs))  # fmt: skip
    g = DAG.from_edges([("a", "b")], nodes=["a", "b", "z"])
    B = np.zeros((4, 4))
    B[1, 0] = 0.75
    sem = SEM(g, B, np.zeros(4), (np.eye(1), np.eye(1), 1.25 * np.eye(2)), (1, 1, 2))
    ctxs = (Context.observational(), Context((Hard("a", 1.0, 2.0),)),
            Context((Hard("b", -1, 0.5),)), Context((Hard("z", [0, 0], 0.5),)))  # fmt: skip
    mlp = MLPMixing.random(6, 9, rng, activation="smooth")
    designs_.append(ConceptModel(sem, mlp, random_readout(4, 6, rng), 2, 1.0, ctxs))
    got = [_assert_sound(m, "exact", 0, note=lambda _: None) for m in designs_]
    assert got[0] == {"a": NOT_IDENTIFIABLE, "b": NOT_IDENTIFIABLE}
    assert got[1] == {"a": NOT_COVERED, "b": NOT_COVERED}
    assert got[2] == {"a": IDENTIFIABLE, "b": IDENTIFIABLE}
    assert got[3]["k"] == NOT_IDENTIFIABLE
    assert got[4]["z"] == NOT_IDENTIFIABLE
