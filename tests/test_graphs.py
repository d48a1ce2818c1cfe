"""Tests for simulations.graphs: DAG construction, validation, orders and random generators."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conceptid.simulations.graphs import DAG, GraphError, chain, erdos_renyi, scale_free

# -- local strategies ---------------------------------------------------------------------------


@st.composite
def dags(draw, min_m: int = 1, max_m: int = 8) -> DAG:
    """A random DAG: a random strictly upper-triangular pattern, relabelled by a random
    permutation (so index order is not a causal order), with random unique names."""
    m = draw(st.integers(min_m, max_m))
    upper = [[j > i and draw(st.booleans()) for j in range(m)] for i in range(m)]
    perm = draw(st.permutations(range(m)))
    A = np.zeros((m, m), dtype=bool)
    for i in range(m):
        for j in range(m):
            if upper[i][j]:
                A[perm[i], perm[j]] = True
    names = draw(
        st.lists(
            st.text("abcdefgh_0123", min_size=1, max_size=4),
            min_size=m,
            max_size=m,
            unique=True,
        )
    )
    return DAG(A, tuple(names))


def assert_valid_order(g: DAG) -> None:
    order = g.order
    assert sorted(order) == list(range(g.m)), "order must be a permutation of the nodes"
    pos = {node: k for k, node in enumerate(order)}
    for i, j in zip(*np.nonzero(g.adjacency)):
        assert pos[i] < pos[j], f"edge {g.names[i]} -> {g.names[j]} goes backwards in {order}"
    assert g.topological_order() == [g.names[i] for i in order]


def assert_acyclic(A: np.ndarray) -> None:
    """Independent check: a nilpotent adjacency matrix (A^m = 0) has no directed cycle."""
    m = A.shape[0]
    P = np.linalg.matrix_power(A.astype(np.int64), m)
    assert not P.any(), "adjacency matrix is not nilpotent: the graph has a cycle"


# -- constructors -------------------------------------------------------------------------------


def test_from_edges_infers_nodes_in_order_of_appearance():
    g = DAG.from_edges([("b", "a"), ("a", "c"), ("b", "c")])
    assert g.names == ("b", "a", "c")
    assert g.m == 3
    assert set(g.edges) == {("b", "a"), ("a", "c"), ("b", "c")}
    assert g.parents("c") == [0, 1]
    assert g.children("b") == [1, 2]
    assert g.ancestors("c") == {0, 1}
    assert g.ancestors("b") == set()


def test_from_edges_with_explicit_nodes_keeps_isolated_nodes_and_order():
    g = DAG.from_edges([("x", "y")], nodes=["z", "y", "x"])
    assert g.names == ("z", "y", "x")
    assert g.adjacency[2, 1] and g.adjacency.sum() == 1
    assert g.parents("z") == [] and g.children("z") == []


def test_from_adjacency_weighted_matrix_nonzero_is_edge():
    W = np.array([[0.0, -0.3, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    g = DAG.from_adjacency(W, names=["p", "q", "r"])
    assert g.edges == [("p", "q"), ("q", "r")]
    assert g.adjacency.dtype == bool
    g2 = DAG.from_adjacency(W)
    assert g2.names == ("c0", "c1", "c2")


def test_from_adjacency_rejects_nan():
    W = np.array([[0.0, np.nan], [0.0, 0.0]])
    with pytest.raises(GraphError, match="NaN"):
        DAG.from_adjacency(W)


def test_adjacency_is_immutable_copy():
    A = np.array([[0, 1], [0, 0]], dtype=bool)
    g = DAG(A)
    A[1, 0] = True  # mutating the caller's array must not create a cycle inside g
    assert not g.adjacency[1, 0]
    with pytest.raises(ValueError):
        g.adjacency[1, 0] = True


def test_chain():
    g = chain(4, names=["a", "b", "c", "d"])
    assert g.edges == [("a", "b"), ("b", "c"), ("c", "d")]
    assert g.topological_order() == ["a", "b", "c", "d"]
    assert chain(1).edges == []
    with pytest.raises(GraphError, match="positive integer"):
        chain(0)


def test_erdos_renyi_mean_edge_count_matches_expected_degree():
    # Edge count is Binomial(N, p) with N = m(m-1)/2 pairs and p = deg/(m-1), so its mean is
    # deg*m/2. Over S independent seeds the empirical mean has standard error
    # sqrt(N p (1-p) / S); 5 standard errors gives a false-failure rate below 1e-6 (and the
    # seeds are fixed, so the outcome is deterministic anyway).
    m, deg, S = 20, 3.0, 300
    N = m * (m - 1) // 2
    p = deg / (m - 1)
    counts = [len(erdos_renyi(m, deg, np.random.default_rng(s)).edges) for s in range(S)]
    se = np.sqrt(N * p * (1 - p) / S)
    assert abs(np.mean(counts) - deg * m / 2) < 5 * se
    # the spread is binomial too (sample variance within 25% of N p (1-p) for S = 300)
    assert np.var(counts, ddof=1) == pytest.approx(N * p * (1 - p), rel=0.25)


def test_erdos_renyi_extremes_and_validation():
    rng = np.random.default_rng(0)
    assert erdos_renyi(6, 0.0, rng).edges == []
    full = erdos_renyi(6, 5.0, rng)  # p = 1: every pair is an edge
    assert len(full.edges) == 15
    assert_acyclic(full.adjacency)
    with pytest.raises(GraphError, match="expected_degree"):
        erdos_renyi(5, 4.5, rng)
    with pytest.raises(GraphError, match="expected_degree"):
        erdos_renyi(5, -1.0, rng)
    with pytest.raises(GraphError, match="expected_degree"):
        erdos_renyi(5, float("nan"), rng)


def test_erdos_renyi_shuffle_false_is_upper_triangular_and_seeded():
    g = erdos_renyi(8, 3.0, np.random.default_rng(1), shuffle=False)
    assert not np.tril(g.adjacency).any()
    assert g.order == tuple(range(8))
    a = erdos_renyi(8, 3.0, np.random.default_rng(5))
    b = erdos_renyi(8, 3.0, np.random.default_rng(5))
    assert a == b


def test_erdos_renyi_shuffle_relabels_nodes():
    # with shuffling, some graph over 10 seeds must have an edge i -> j with i > j
    gs = [erdos_renyi(8, 3.0, np.random.default_rng(s)) for s in range(10)]
    assert any(np.tril(g.adjacency).any() for g in gs)


def test_scale_free_parent_counts():
    m, k = 12, 2
    g = scale_free(m, k, np.random.default_rng(0), shuffle=False)
    indeg = g.adjacency.sum(axis=0)
    assert indeg.tolist() == [min(k, j) for j in range(m)]
    assert not np.tril(g.adjacency).any()  # earlier -> later
    gs = scale_free(m, k, np.random.default_rng(0))
    assert sorted(gs.adjacency.sum(axis=0).tolist()) == sorted(indeg.tolist())
    assert len(gs.edges) == sum(min(k, j) for j in range(m))
    assert scale_free(5, 0, np.random.default_rng(0)).edges == []
    with pytest.raises(GraphError, match="n_parents"):
        scale_free(5, -1, np.random.default_rng(0))


def test_scale_free_preferential_attachment_favours_early_hubs():
    # Node 0 (present from the start) collects on average far more children than a late node.
    m, k, S = 30, 1, 100
    first = np.mean(
        [
            scale_free(m, k, np.random.default_rng(s), shuffle=False).adjacency[0].sum()
            for s in range(S)
        ]
    )
    late = np.mean(
        [
            scale_free(m, k, np.random.default_rng(s), shuffle=False).adjacency[20].sum()
            for s in range(S)
        ]
    )
    assert first > 3 * late


# -- validation ---------------------------------------------------------------------------------


def test_cycle_raises_naming_the_cycle():
    with pytest.raises(GraphError, match="cycle") as err:
        DAG.from_edges([("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")])
    msg = str(err.value)
    for node in ("a", "b", "c"):
        assert repr(node)[1:-1] in msg
    assert "x" not in msg.split("cycle")[-1]


def test_self_loop_raises_naming_the_node():
    with pytest.raises(GraphError, match="self-loop.*'loopy'"):
        DAG.from_edges([("a", "loopy"), ("loopy", "loopy")])


def test_duplicate_names_raise_naming_the_duplicate():
    with pytest.raises(GraphError, match="duplicate.*'twin'"):
        DAG(np.zeros((3, 3), dtype=bool), ("twin", "other", "twin"))


def test_unknown_node_in_edge_raises_naming_it():
    with pytest.raises(GraphError, match="'ghost'"):
        DAG.from_edges([("a", "ghost")], nodes=["a", "b"])


def test_unknown_node_lookup_raises_naming_it():
    g = chain(3)
    with pytest.raises(GraphError, match="'nope'"):
        g.index("nope")
    with pytest.raises(GraphError, match="out of range"):
        g.parents(3)


@pytest.mark.parametrize(
    "adjacency, names, what",
    [
        (np.zeros((2, 3)), (), "square"),
        (np.array([[0, 2], [0, 0]]), (), "0/1"),
        (np.zeros((2, 2)), ("a",), "names"),
        (np.zeros((2, 2)), ("a", ""), "non-empty"),
    ],
)
def test_malformed_graph_raises(adjacency, names, what):
    with pytest.raises(GraphError, match=what):
        DAG(adjacency, names)


# -- orders, serialisation, mutilation ----------------------------------------------------------


@given(dags())
def test_topological_order_is_valid(g):
    assert_valid_order(g)


@given(dags())
def test_to_dict_from_dict_round_trip(g):
    d = json.loads(json.dumps(g.to_dict()))
    g2 = DAG.from_dict(d)
    assert g2 == g
    assert hash(g2) == hash(g)
    assert g2.order == g.order


def test_from_dict_rejects_missing_keys():
    with pytest.raises(GraphError, match="nodes"):
        DAG.from_dict({"edges": []})


def test_equality_distinguishes_names_and_edges():
    assert chain(3) != chain(3, names=["a", "b", "c"])
    assert chain(3) != DAG.from_edges([("c0", "c1")], nodes=["c0", "c1", "c2"])
    assert chain(3) == chain(3)


@given(dags(min_m=2), st.data())
def test_remove_incoming_cuts_exactly_the_targets_parents(g, data):
    targets = data.draw(st.sets(st.integers(0, g.m - 1), min_size=1))
    h = g.remove_incoming(targets)
    for j in range(g.m):
        if j in targets:
            assert h.parents(j) == []
        else:
            assert h.parents(j) == g.parents(j)
    assert h.names == g.names
    assert g.adjacency.sum() >= h.adjacency.sum()  # g itself unchanged and a superset


# -- random generators are acyclic --------------------------------------------------------------


@given(
    st.integers(1, 15),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_erdos_renyi_is_acyclic(m, frac, seed, shuffle):
    g = erdos_renyi(m, frac * (m - 1), np.random.default_rng(seed), shuffle=shuffle)
    assert g.m == m
    assert_acyclic(g.adjacency)
    assert_valid_order(g)


@given(st.integers(1, 15), st.integers(0, 4), st.integers(0, 2**32 - 1), st.booleans())
def test_scale_free_is_acyclic(m, k, seed, shuffle):
    g = scale_free(m, k, np.random.default_rng(seed), shuffle=shuffle)
    assert g.m == m
    assert_acyclic(g.adjacency)
    assert_valid_order(g)
    assert len(g.edges) == sum(min(k, j) for j in range(m))
