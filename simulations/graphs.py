"""Directed acyclic graphs over named concepts.

A :class:`DAG` is an immutable set of named nodes and directed edges ``parent -> child``, stored as
a boolean adjacency matrix ``A`` with ``A[i, j]`` true when ``i -> j`` (the convention of sempler
and of most structure-learning code). Construction validates: a cycle, a self-loop, a duplicate or
an unknown node name raises :class:`GraphError` naming what was wrong.

Random generators take a :class:`numpy.random.Generator`; no global seeding anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConceptIDError
from .validation import check_keys, check_number

__all__ = [
    "DAG",
    "GraphError",
    "chain",
    "erdos_renyi",
    "find_cycle",
    "scale_free",
]


class GraphError(ConceptIDError):
    """A graph is not a valid DAG (cycle, self-loop, duplicate or unknown node name)."""


def _refuse_duplicates(names: Sequence) -> None:
    """GraphError naming the first node name given twice (names compared as given)."""
    twice = [nm for nm, k in Counter(names).items() if k > 1]
    if twice:
        raise GraphError(f"duplicate node names: node {twice[0]!r} is named twice")


def _default_names(m: int) -> tuple[str, ...]:
    return tuple(f"c{j}" for j in range(m))


@dataclass(frozen=True, eq=False)
class DAG:
    """An immutable directed acyclic graph over named nodes.

    Parameters
    ----------
    adjacency : array_like of bool, shape (m, m)
        ``adjacency[i, j]`` is true when there is an edge ``i -> j``.
    names : sequence of str, optional
        Node names, unique; defaults to ``c0 .. c{m-1}``.

    Raises
    ------
    GraphError
        If the matrix is not square, has a self-loop or a directed cycle, or the names are not
        unique non-empty strings of the right count.
    """

    adjacency: np.ndarray
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        A = np.asarray(self.adjacency)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise GraphError(f"adjacency must be a square matrix, got shape {A.shape}")
        if A.dtype != bool:
            if not np.all(np.isin(A, (0, 1))):
                raise GraphError("adjacency must hold only 0/1 (or booleans)")
            A = A.astype(bool)
        A = A.copy()
        A.setflags(write=False)
        m = A.shape[0]
        names = tuple(self.names) if len(self.names) else _default_names(m)
        if len(names) != m:
            raise GraphError(f"names has {len(names)} entries for {m} nodes")
        for nm in names:
            if not isinstance(nm, str) or not nm:
                raise GraphError(f"node names must be non-empty strings, got {nm!r}")
        _refuse_duplicates(names)
        loops = np.flatnonzero(np.diag(A))
        if loops.size:
            raise GraphError(f"self-loop at node {names[loops[0]]!r}")
        object.__setattr__(self, "adjacency", A)
        object.__setattr__(self, "names", names)
        cycle = find_cycle(A)
        if cycle is not None:
            path = " -> ".join(names[i] for i in cycle)
            raise GraphError(f"graph has a directed cycle: {path}")
        object.__setattr__(self, "_order", _topological_order(A))

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_edges(
        cls, edges: Iterable[tuple[str, str]], nodes: Sequence[str] | None = None
    ) -> DAG:
        """Build a DAG from ``(parent, child)`` name pairs.

        Parameters
        ----------
        edges : iterable of (str, str)
            Directed edges ``parent -> child``.
        nodes : sequence of str, optional
            All node names in order. If omitted, nodes are the names met in ``edges`` in order of
            first appearance. If given, an edge naming another node raises :class:`GraphError`.
        """
        edges = [tuple(e) for e in edges]
        for e in edges:
            if len(e) != 2:
                raise GraphError(f"an edge must be a (parent, child) pair, got {e!r}")
        if nodes is None:
            seen: dict[str, None] = {}
            for p, c in edges:
                seen.setdefault(p, None)
                seen.setdefault(c, None)
            nodes = list(seen)
        names = tuple(nodes)
        _refuse_duplicates(names)  # before the edges, which would blame a node as unknown
        index = {nm: i for i, nm in enumerate(names)}
        A = np.zeros((len(names), len(names)), dtype=bool)
        for p, c in edges:
            for nm in (p, c):
                if nm not in index:
                    raise GraphError(f"edge {p!r} -> {c!r} names unknown node {nm!r}")
            A[index[p], index[c]] = True
        return cls(A, names)

    @classmethod
    def from_adjacency(cls, adjacency: np.ndarray, names: Sequence[str] | None = None) -> DAG:
        """Build a DAG from a (weighted or boolean) adjacency matrix; nonzero means an edge."""
        A = np.asarray(adjacency)
        if A.ndim != 2:
            raise GraphError(f"adjacency must be a 2-D matrix, got shape {A.shape}")
        if not np.all(np.isfinite(A)):
            raise GraphError("adjacency contains NaN or infinite entries")
        return cls(A != 0, tuple(names) if names is not None else ())

    # -- queries ------------------------------------------------------------------------------

    @property
    def m(self) -> int:
        """Number of nodes."""
        return self.adjacency.shape[0]

    @property
    def order(self) -> tuple[int, ...]:
        """A topological order (parents before children), deterministic."""
        return self._order  # type: ignore[attr-defined]

    def topological_order(self) -> list[str]:
        """Node names in a topological order."""
        return [self.names[i] for i in self.order]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Edges as ``(parent, child)`` name pairs, sorted by index."""
        return [(self.names[i], self.names[j]) for i, j in zip(*np.nonzero(self.adjacency))]

    def index(self, name: str | int) -> int:
        """Index of a node given by name or index; raises :class:`GraphError` if unknown."""
        if isinstance(name, int | np.integer) and not isinstance(name, bool):
            if 0 <= int(name) < self.m:
                return int(name)
            raise GraphError(f"node index {name} out of range for a graph with {self.m} nodes")
        try:
            return self.names.index(name)
        except ValueError:
            raise GraphError(f"unknown node {name!r}; nodes are {list(self.names)}") from None

    def parents(self, node: str | int) -> list[int]:
        """Indices of the parents of ``node``."""
        return np.flatnonzero(self.adjacency[:, self.index(node)]).tolist()

    def children(self, node: str | int) -> list[int]:
        """Indices of the children of ``node``."""
        return np.flatnonzero(self.adjacency[self.index(node), :]).tolist()

    def ancestors(self, node: str | int) -> set[int]:
        """Indices of all proper ancestors of ``node``."""
        return self._reach(node, self.parents)

    def descendants(self, node: str | int) -> set[int]:
        """Indices of all proper descendants of ``node``."""
        return self._reach(node, self.children)

    def _reach(self, node: str | int, step) -> set[int]:
        out: set[int] = set()
        stack = step(node)
        while stack:
            i = stack.pop()
            if i not in out:
                out.add(i)
                stack.extend(step(i))
        return out

    def remove_incoming(self, nodes: Iterable[int]) -> DAG:
        """The mutilated graph with every edge into ``nodes`` removed (a hard intervention).

        Removing edges keeps a DAG acyclic and keeps its topological order valid, so the result
        is built without re-validation."""
        A = self.adjacency.copy()
        A[:, list(nodes)] = False
        A.setflags(write=False)
        new = object.__new__(DAG)
        object.__setattr__(new, "adjacency", A)
        object.__setattr__(new, "names", self.names)
        object.__setattr__(new, "_order", self._order)  # type: ignore[attr-defined]
        return new

    def to_dict(self) -> dict:
        """JSON-serialisable form: ``{"nodes": [...], "edges": [[parent, child], ...]}``."""
        return {"nodes": list(self.names), "edges": [list(e) for e in self.edges]}

    @classmethod
    def from_dict(cls, d: dict) -> DAG:
        """Inverse of :meth:`to_dict`; refuses a key :meth:`to_dict` does not write, and
        ``nodes`` or ``edges`` that are not lists."""
        if not isinstance(d, dict) or "nodes" not in d or "edges" not in d:
            raise GraphError("a graph dict needs the keys 'nodes' and 'edges'")
        check_keys(d, _GRAPH_KEYS, "graph", GraphError)
        for key in _GRAPH_KEYS:
            if not isinstance(d[key], list | tuple):
                raise GraphError(f"{key}: must be a list, got {d[key]!r:.80}")
        for e in d["edges"]:
            if not isinstance(e, list | tuple):
                raise GraphError(f"edges: an edge must be a [parent, child] pair, got {e!r:.80}")
        return cls.from_edges([tuple(e) for e in d["edges"]], nodes=d["nodes"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DAG):
            return NotImplemented
        return self.names == other.names and np.array_equal(self.adjacency, other.adjacency)

    def __hash__(self) -> int:
        return hash((self.names, self.adjacency.tobytes()))

    def __repr__(self) -> str:
        return f"DAG(m={self.m}, edges={self.edges})"


#: the keys of :meth:`DAG.to_dict`, the only ones :meth:`DAG.from_dict` takes
_GRAPH_KEYS = ("nodes", "edges")


def find_cycle(A: np.ndarray) -> list[int] | None:
    """A directed cycle of the adjacency ``A`` (``A[i, j]``: edge ``i -> j``) as a closed node
    path ``[i, ..., i]``, or None when ``A`` is acyclic (iterative DFS, white/grey/black)."""
    m = A.shape[0]
    colour = np.zeros(m, dtype=np.int8)
    succ = [np.flatnonzero(A[i]).tolist() for i in range(m)]
    for root in range(m):
        if colour[root]:
            continue
        stack = [(root, iter(succ[root]))]
        path = [root]
        colour[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt) :] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
                path.append(nxt)
    return None


def _topological_order(A: np.ndarray) -> tuple[int, ...]:
    """Kahn's algorithm, always taking the smallest ready index (deterministic)."""
    indeg = A.sum(axis=0).astype(int)
    ready = sorted(np.flatnonzero(indeg == 0).tolist())
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(A[i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(int(j))
                ready.sort()
    return tuple(order)


def _check_m(m: int) -> int:
    return check_number(m, "m (number of nodes)", error=GraphError)


def _random_order_dag(A_lower: np.ndarray, rng: np.random.Generator, names) -> DAG:
    """Relabel a DAG given in index order by a random permutation, so that a node's index says
    nothing of its position in the causal order."""
    m = A_lower.shape[0]
    perm = rng.permutation(m)
    A = np.zeros_like(A_lower)
    A[np.ix_(perm, perm)] = A_lower
    return DAG(A, tuple(names) if names is not None else ())


def chain(m: int, names: Sequence[str] | None = None) -> DAG:
    """The chain ``0 -> 1 -> ... -> m-1``."""
    m = _check_m(m)
    A = np.eye(m, k=1, dtype=bool)
    return DAG(A, tuple(names) if names is not None else ())


def erdos_renyi(
    m: int,
    expected_degree: float,
    rng: np.random.Generator,
    *,
    names: Sequence[str] | None = None,
    shuffle: bool = True,
) -> DAG:
    """Erdos-Renyi DAG: each of the ``m(m-1)/2`` pairs is an edge with probability
    ``expected_degree / (m - 1)``, oriented along a random order.

    Parameters
    ----------
    m : int
        Number of nodes.
    expected_degree : float
        Expected number of neighbours (parents plus children) of a node, in ``[0, m-1]``.
    rng : numpy.random.Generator
    shuffle : bool
        Randomly permute node labels (default) so the index order is not a causal order.
    """
    m = _check_m(m)
    expected_degree = check_number(
        expected_degree, "expected_degree", integer=False, minimum=0, error=GraphError
    )
    if not 0 <= expected_degree <= max(m - 1, 0):
        raise GraphError(
            f"expected_degree must lie in [0, m-1] = [0, {m - 1}], got {expected_degree}"
        )
    p = expected_degree / (m - 1) if m > 1 else 0.0
    A = np.triu(rng.random((m, m)) < p, k=1)
    if shuffle:
        return _random_order_dag(A, rng, names)
    return DAG(A, tuple(names) if names is not None else ())


def scale_free(
    m: int,
    n_parents: int,
    rng: np.random.Generator,
    *,
    names: Sequence[str] | None = None,
    shuffle: bool = True,
) -> DAG:
    """Scale-free DAG by preferential attachment (Barabasi-Albert): nodes arrive in order and each
    new node takes ``min(n_parents, #earlier nodes)`` distinct parents among earlier nodes, chosen
    with probability proportional to (degree + 1). Edges point from earlier to later nodes."""
    m = _check_m(m)
    check_number(n_parents, "n_parents", minimum=0, error=GraphError)
    A = np.zeros((m, m), dtype=bool)
    degree = np.zeros(m)
    for j in range(1, m):
        k = min(int(n_parents), j)
        if k == 0:
            continue
        w = degree[:j] + 1.0
        pa = rng.choice(j, size=k, replace=False, p=w / w.sum())
        A[pa, j] = True
        degree[pa] += 1
        degree[j] += k
    if shuffle:
        return _random_order_dag(A, rng, names)
    return DAG(A, tuple(names) if names is not None else ())
