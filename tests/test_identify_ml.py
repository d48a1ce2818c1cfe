"""Theorem L's peeling with the peel order chosen by maximum likelihood (`identify_linear_ml`):
exact on population moments, and robust where the greedy order is not (a measured case)."""

from __future__ import annotations

import numpy as np
import pytest

from conceptid.identifiability import (
    Exact,
    IdentificationError,
    Numeric,
    align,
    identify_linear,
    identify_linear_ml,
    model_moments,
    readout_distance,
)
from conceptid.models.data import from_dataset
from conceptid.simulations import BenchmarkSpec, build_preset, generate


def _counts(targets, n=1000):
    return [n] * len(targets)


def test_population_moments_give_the_true_readout_graph_and_a_causal_order():
    model = build_preset(
        "random", np.random.default_rng(2), m=3, nuisance_dim=1, block_size=2, mixing="linear"
    )
    moments, targets = model_moments(model, Numeric())
    res = identify_linear_ml(moments, targets, model.sem.block_sizes, _counts(targets))
    assert np.max(readout_distance(res.readout, model)) < 1e-8
    assert np.array_equal(res.graph.adjacency, model.sem.graph.adjacency)
    pos = {j: i for i, j in enumerate(res.order)}
    for parent, child in zip(*np.nonzero(model.sem.graph.adjacency)):
        assert pos[parent] < pos[child]


def _distorted_l3_concepts(size: float):
    """The ladder's L3 concepts (seed 1) through ``(C + size tanh(C W)) A`` (fixed W, A)."""
    spec = BenchmarkSpec(preset="random", preset_args={"m": 5, "p": 16, "mixing": "mlp"},
                         n_train=2000, n_val=300, n_test=500, seed=1)  # fmt: skip
    tr = from_dataset(generate(spec), "train", "training")
    C, T = tr.concepts.double().numpy(), tr.targets.numpy()
    rng = np.random.default_rng(0)
    rng.standard_normal(C.shape)  # the benchmark's Gaussian-noise draw comes first
    W, A = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    Z = (C + size * np.tanh(C @ W)) @ A
    rows = [~T.any(1)] + [T[:, j] for j in range(5)]
    moments = [(Z[r].mean(0), np.cov(Z[r].T)) for r in rows]
    return C, Z, moments, [None, 0, 1, 2, 3, 4], [int(r.sum()) for r in rows]


def test_likelihood_order_survives_a_small_nonlinear_distortion_that_breaks_the_greedy_one():
    """Measured finding (benchmarks/bench_peel_robustness.py): a 3% tanh distortion makes the
    greedy order mix one concept (R^2 0.37); the likelihood-chosen order recovers all five."""
    C, Z, moments, targets, counts = _distorted_l3_concepts(0.03)
    greedy = align(Z @ identify_linear(moments, targets, [1] * 5, Numeric()).readout.T, C).r2
    assert greedy.min() < 0.5, greedy
    ml = align(Z @ identify_linear_ml(moments, targets, [1] * 5, counts).readout.T, C).r2
    assert np.all(ml > 0.98), ml
    # the hill climb used for many concepts gets there too, from the greedy order
    hill = identify_linear_ml(moments, targets, [1] * 5, counts, max_exhaustive=1)
    assert np.all(align(Z @ hill.readout.T, C).r2 > 0.98)


def test_the_hill_climb_peels_each_order_once(monkeypatch):
    """Moving concept i to i + 1 and i + 1 to i give one order: every order is peeled at most
    once, the last sweep still looks at every candidate, and the result is the read-out of its
    chosen order."""
    import conceptid.identifiability.linear as lin

    _, Z, moments, targets, counts = _distorted_l3_concepts(0.03)
    peeled = []
    real = lin._identify

    def counting(prep, A, edge_tol, names, peel_order, cache=None):
        peeled.append(None if peel_order is None else tuple(peel_order))
        return real(prep, A, edge_tol, names, peel_order, cache)

    monkeypatch.setattr(lin, "_identify", counting)
    hill = identify_linear_ml(moments, targets, [1] * 5, counts, max_exhaustive=1)
    orders = [o for o in peeled if o is not None]
    assert peeled[0] is None and len(orders) == len(set(orders)) > 0
    # every candidate of the last (unimproving) sweep was looked at: all 5 * 4 moves, of which
    # 4 adjacent swaps repeat, so at least 16 distinct orders
    assert len(orders) >= 16
    # the same read-out as peeling the chosen order directly
    again = identify_linear(moments, targets, [1] * 5, Numeric(), peel_order=list(hill.order))
    assert np.allclose(again.readout, hill.readout)


@pytest.mark.parametrize("max_exhaustive", [6, 1])
def test_the_search_gives_what_peeling_every_order_afresh_gives(max_exhaustive):
    """The search prepares the order-free steps once and shares peeled prefixes between orders:
    its answer is, to the last bit, the one of a plain search that calls the public
    ``identify_linear`` afresh for every order (all 120 orders; or the hill climb's moves) and
    keeps the first order of the highest likelihood."""
    import itertools

    import conceptid.identifiability.linear as lin

    _, _, moments, targets, counts = _distorted_l3_concepts(0.03)
    white = lin._whitened(moments, 0)

    def score(order):
        try:
            ident = identify_linear(moments, targets, [1] * 5, Numeric(), peel_order=order)
        except IdentificationError:
            return None, -np.inf
        return ident, lin._gaussian_loglik(ident, white, targets, [1] * 5, counts)

    best, best_ll = score(None)
    if max_exhaustive >= 5:
        for order in itertools.permutations(range(5)):
            ident, ll = score(list(order))
            if ll > best_ll:
                best, best_ll = ident, ll
    else:
        order, improved = list(best.order), True
        while improved:
            improved = False
            for i, j in itertools.permutations(range(5), 2):
                cand = order[:i] + order[i + 1 :]
                cand.insert(j, order[i])
                ident, ll = score(cand)
                if ll > best_ll + 1e-9:
                    best, best_ll, order, improved = ident, ll, cand, True
    got = identify_linear_ml(moments, targets, [1] * 5, counts, max_exhaustive=max_exhaustive)
    assert got.order == best.order
    for name in ("readout", "weights", "noise_mean"):
        assert np.array_equal(getattr(got, name), getattr(best, name)), name
    for j in range(5):
        assert np.array_equal(got.noise_cov[j], best.noise_cov[j])
        assert np.array_equal(got.intervention_mean[j], best.intervention_mean[j])
        assert np.array_equal(got.intervention_cov[j], best.intervention_cov[j])
    assert np.array_equal(got.graph.adjacency, best.graph.adjacency)


def test_a_prefix_that_cannot_be_peeled_fails_every_order_that_starts_with_it():
    """The shared peel remembers a failed prefix too: forcing a non-causal first concept fails
    for every order beginning with it, as a fresh peel does, each time with a fresh error."""
    import conceptid.identifiability.linear as lin

    model = build_preset("chain", np.random.default_rng(0), m=4, mixing="linear")
    moments, targets = model_moments(model, Exact())
    order = identify_linear(moments, targets, model.sem.block_sizes, Exact()).order
    A = Exact()
    ks = [1] * 4
    edge_tol, ks, obs, ctx_of, mats, _ = lin._checked(moments, targets, ks, A, 0.1, None)
    prep = lin._Prepared(ks, obs, ctx_of, *lin._order_free(mats, obs, ctx_of, ks, A))
    cache: dict = {}
    last = order[-1]  # a sink: peeling it first breaks Theorem L's order
    rest = [j for j in order if j != last]
    errors = []
    for tail in (rest, rest[::-1]):
        with pytest.raises(IdentificationError, match="can be identified next") as err:
            lin._identify(prep, A, edge_tol, None, [last, *tail], cache)
        errors.append(err.value)
    assert errors[0] is not errors[1]  # the second is raised afresh from the remembered message
    assert str(errors[0]) == str(errors[1]) == cache[(last,)]
    ok = lin._identify(prep, A, edge_tol, None, order, cache)
    assert ok.order == order
    # prefixes of m - 1 concepts fix the order, which a search peels once: not kept
    assert max(len(key) for key in cache) <= 4 - 2


def test_the_shared_peel_fails_where_a_fresh_peel_fails_and_peels_less(monkeypatch):
    """Orders that fail part-way (made to, here: any prefix beginning 2, 0) fail in the search
    with the shared peel exactly as with a fresh peel per order, the search returns the same
    model, and the shared peel runs fewer peel steps."""
    import itertools

    import conceptid.identifiability.linear as lin

    _, _, moments, targets, counts = _distorted_l3_concepts(0.03)
    real = lin._peel_next
    steps = []

    def failing(L, ys, ctx_of, ks, A, H, order, remaining, peel_order):
        steps.append(1)
        if peel_order is not None and list(peel_order[: len(H) + 1])[:2] == [2, 0]:
            raise IdentificationError("made to fail")
        return real(L, ys, ctx_of, ks, A, H, order, remaining, peel_order)

    monkeypatch.setattr(lin, "_peel_next", failing)
    white = lin._whitened(moments, 0)
    best, best_ll, fresh_failures = None, -np.inf, 0
    for order in [None, *map(list, itertools.permutations(range(5)))]:
        try:
            ident = identify_linear(moments, targets, [1] * 5, Numeric(), peel_order=order)
        except IdentificationError:
            fresh_failures += 1
            continue
        ll = lin._gaussian_loglik(ident, white, targets, [1] * 5, counts)
        if ll > best_ll:
            best, best_ll = ident, ll
    fresh_steps = len(steps)
    steps.clear()
    got = identify_linear_ml(moments, targets, [1] * 5, counts)
    assert fresh_failures == 6  # the orders beginning 2, 0
    assert got.order == best.order and np.array_equal(got.readout, best.readout)
    # shared: the greedy peel (5 steps), then each prefix of 1, 2 and 3 concepts once (5 + 20 +
    # 57: the 3 that begin 2, 0 are never reached) and the last two positions of the 114 orders
    # that get past them (228, not kept: each order is peeled once)
    assert len(steps) == 5 + 5 + 20 + 57 + 228 < fresh_steps
