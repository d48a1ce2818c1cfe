"""The full generative model of proofs/setting.md: concepts, nuisance, embedding, observation.

Under context ``k`` the concepts ``c`` follow the intervened
:class:`~conceptid.simulations.sem.SEM`; the
nuisance ``n`` is drawn independently from the same Gaussian law in every context (A5); the
embedding is ``e = T^{-1} [c; n]`` with ``T = [C; N]`` invertible (so ``c = C e`` in every context,
A1, with ``C`` of full row rank, A2); the observation is ``x = f(e)`` for a :class:`Mixing` ``f``.

One :class:`ConceptModel` carries the SEM, the read-out ``T``, the nuisance law, the mixing and the
context design (training contexts and held-out composed contexts); it samples benchmarks and is
the object whose assumptions the identifiability layer checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ConceptIDError, UsageError
from .interventions import Context, Intervention, InterventionError, as_context, as_floats
from .memory import check_memory, sample_bytes
from .mixing import (
    FunctionMixing,
    Mixing,
    MixingError,
    mixing_from_dict,
    well_conditioned_matrix,
)
from .sem import SEM, SEMError
from .validation import at, check_keys, check_number

__all__ = ["ConceptModel", "ModelError", "Sample", "random_readout"]


class ModelError(ConceptIDError):
    """A concept model is inconsistent (shapes of read-out, nuisance and mixing disagree, ...)."""


@dataclass(frozen=True)
class Sample:
    """Draws from one context: observations ``x`` ``(n, *output_shape)``, concepts ``c``
    ``(n, K)``, nuisance ``nuisance`` ``(n, d - K)`` and embedding ``e`` ``(n, d)``."""

    x: np.ndarray
    c: np.ndarray
    nuisance: np.ndarray
    e: np.ndarray


def random_readout(K: int, d: int, rng: np.random.Generator, condition_number: float = 3.0):
    """A random invertible ``T = [C; N]`` (``(d, d)``) with the given condition number."""
    if d < K:
        raise ModelError(f"embedding dimension d = {d} must be >= K = {K}")
    return well_conditioned_matrix(d, d, rng, condition_number)


@dataclass(frozen=True, eq=False)
class ConceptModel:
    """Concepts -> embedding -> observation, with a context design.

    Parameters
    ----------
    sem : SEM
        The observational concept SEM (context 0).
    mixing : Mixing or callable
        ``f``, with ``input_dim == d``. A plain function of ``(n, d)`` embeddings is wrapped in
        :class:`~conceptid.simulations.mixing.FunctionMixing` with ``input_dim = d``.
    readout : ndarray, shape (d, d), optional
        ``T = [C; N]``, invertible; default identity (``e = [c; n]``).
    nuisance_dim : int
        ``d - K``; the nuisance law is ``N(0, nuisance_scale^2 I)``.
    nuisance_scale : float
    contexts : sequence of Context
        Training contexts (the first is usually observational).
    held_out : sequence of Context
        Composed contexts reserved for out-of-distribution tests.

    Raises
    ------
    ModelError
        Inconsistent parts: shapes of read-out, nuisance and mixing, a read-out that is not
        real (complex values are refused, never cast), finite and invertible, context names
        given twice, no training context at all.
    """

    sem: SEM
    mixing: Mixing
    readout: np.ndarray | None = None
    nuisance_dim: int = 0
    nuisance_scale: float = 1.0
    contexts: tuple = (Context.observational(),)
    held_out: tuple = ()

    def __post_init__(self) -> None:
        if not isinstance(self.sem, SEM):
            raise ModelError(f"sem must be an SEM, got {type(self.sem).__name__}")
        check_number(self.nuisance_dim, "nuisance_dim", minimum=0, error=ModelError)
        if not isinstance(self.mixing, Mixing):
            if not callable(self.mixing) or isinstance(self.mixing, type):
                raise ModelError(
                    f"mixing must be a Mixing or a function, got {type(self.mixing).__name__}"
                )
            wrapped = FunctionMixing(self.mixing, self.sem.K + int(self.nuisance_dim))
            object.__setattr__(self, "mixing", wrapped)
        scale_rule = {"integer": False, "minimum": 0, "exclusive": True, "error": ModelError}
        check_number(self.nuisance_scale, "nuisance_scale", **scale_rule)
        d = self.sem.K + int(self.nuisance_dim)
        if self.mixing.input_dim != d:
            raise ModelError(
                f"mixing takes {self.mixing.input_dim} inputs but K + nuisance_dim = "
                f"{self.sem.K} + {self.nuisance_dim} = {d}"
            )
        T = np.eye(d)
        if self.readout is not None:  # a copy (it is frozen below); complex values refused
            T = np.array(as_floats(self.readout, "readout", ModelError))
        if T.shape != (d, d):
            raise ModelError(f"readout T must be ({d}, {d}), got {T.shape}")
        if not np.all(np.isfinite(T)):
            raise ModelError("readout contains NaN or infinite values")
        if np.linalg.matrix_rank(T) < d:
            raise ModelError("readout T = [C; N] must be invertible")
        T.setflags(write=False)
        Tinv = np.linalg.inv(T)
        Tinv.setflags(write=False)
        object.__setattr__(self, "readout", T)
        object.__setattr__(self, "_Tinv", Tinv)
        object.__setattr__(self, "nuisance_dim", int(self.nuisance_dim))
        ctxs = tuple(as_context(c) for c in self.contexts)
        if not ctxs:  # a design of no context: nothing to learn from, nothing a witness must match
            raise ModelError("a model needs at least one training context, got none (the "
                             "observational one is {\"interventions\": []})")  # fmt: skip
        held = tuple(as_context(c) for c in self.held_out)
        names = [c.name for c in ctxs + held]
        if len(set(names)) != len(names):
            raise ModelError(f"context names must be unique, got {names}")
        for c in ctxs + held:  # an unknown target or parent, a bad law: refused now, named
            try:
                self.sem.intervene(c)
            except ConceptIDError as err:
                raise at(f"context {c.name!r}", err) from None
        object.__setattr__(self, "contexts", ctxs)
        object.__setattr__(self, "held_out", held)

    # -- facts --------------------------------------------------------------------------------

    @property
    def K(self) -> int:
        return self.sem.K

    @property
    def d(self) -> int:
        """Embedding dimension ``K + nuisance_dim``."""
        return self.sem.K + self.nuisance_dim

    @property
    def C(self) -> np.ndarray:
        """Concept read-out ``(K, d)``: ``c = C e``."""
        return self.readout[: self.K]

    @property
    def N(self) -> np.ndarray:
        """Nuisance read-out ``(d - K, d)``: ``n = N e``."""
        return self.readout[self.K :]

    @property
    def all_contexts(self) -> tuple[Context, ...]:
        return self.contexts + self.held_out

    def context(self, name: str) -> Context:
        """A context of the design by name."""
        for c in self.all_contexts:
            if c.name == name:
                return c
        raise InterventionError(
            f"unknown context {name!r}; contexts are {[c.name for c in self.all_contexts]}"
        )

    # -- sampling -----------------------------------------------------------------------------

    def embed(self, c: np.ndarray, nuisance: np.ndarray) -> np.ndarray:
        """``e = T^{-1} [c; n]`` row-wise (``(n, d)``)."""
        cn = np.concatenate([c, nuisance], axis=1)
        return cn @ self._Tinv.T.astype(cn.dtype)  # type: ignore[attr-defined]

    def _resolve(self, context) -> Context:
        """A context given as a Context, its name, an intervention (or a list of them) or None;
        anything else (a number) is refused with UsageError."""
        if isinstance(context, str):
            return self.context(context)
        if context is not None and not isinstance(context, Context | Intervention | Iterable):
            raise UsageError(f"context must be a Context, a context name, an intervention (or a "
                             f"list of them) or None, got {context!r:.80}")  # fmt: skip
        return as_context(context)

    def sample(
        self,
        context,
        n: int,
        rng: np.random.Generator,
        *,
        dtype: type = np.float64,
        progress: bool = False,
        max_memory: float | None = None,
    ) -> Sample:
        """``n`` draws under ``context`` (a Context, its name, an intervention, or None).

        ``max_memory``: limit in GiB (:func:`~conceptid.simulations.memory.check_memory`;
        default: the ``CONCEPTID_MAX_MEMORY`` environment variable, else the memory available
        now).

        Raises
        ------
        UsageError
            ``context`` of another kind (a number: contexts are given by name here).
        InterventionError
            An unknown context name or intervention target.
        SEMError
            ``n`` not an integer >= 0, ``rng`` not a numpy Generator, or another ``dtype``.
        MemoryLimitError
            Before anything is allocated, when the draw
            (:func:`~conceptid.simulations.memory.sample_bytes`) exceeds the limit.
        """
        ctx = self._resolve(context)
        n = check_number(n, "n", minimum=0, error=SEMError)
        mix = self.mixing
        # a user's function is not called only to size the check: until its output is known
        # (given, or seen once), each observation is counted at the embedding's width
        out = mix.known_output_shape if isinstance(mix, FunctionMixing) else mix.output_shape
        values = math.prod(out) if out is not None else mix.input_dim
        need = sample_bytes(n, self.K, self.nuisance_dim, values, image=mix.kind == "image")
        shape = f"of shape {tuple(out)}" if out is not None else f"of {mix.name}"
        check_memory(need, f"sampling {n} observations {shape}", max_memory)
        c = self.sem.intervene(ctx).sample(n, rng, dtype=dtype, max_memory=max_memory)
        nu = (self.nuisance_scale * rng.standard_normal((n, self.nuisance_dim))).astype(dtype)
        e = self.embed(c, nu)
        kw = {"progress": progress} if self.mixing.kind == "image" else {}
        x = self.mixing(e, **kw)
        return Sample(x=x, c=c, nuisance=nu, e=e)

    def population_moments(self, context) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean ``(K,)`` and covariance ``(K, K)`` of the concepts under ``context``."""
        ctx = self._resolve(context)
        s = self.sem.intervene(ctx)
        return s.population_moments()

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "sem": self.sem.to_dict(),
            "mixing": self.mixing.to_dict(),
            "readout": self.readout.tolist(),
            "nuisance_dim": self.nuisance_dim,
            "nuisance_scale": float(self.nuisance_scale),
            "contexts": [c.to_dict() for c in self.contexts],
            "held_out": [c.to_dict() for c in self.held_out],
        }

    @classmethod
    def from_dict(cls, d: dict) -> ConceptModel:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ConceptIDError
            A subclass naming the problem and where it is (``sem: ...``,
            ``contexts[1].interventions[0]: ...``): :class:`ModelError` for a dict whose
            structure or value types are wrong, :class:`SEMError`, :class:`MixingError` or
            :class:`InterventionError` for a malformed part. The input is untrusted JSON, so a
            missing key, a key that :meth:`to_dict` does not write (at any depth: a misspelt key
            would otherwise be dropped without a word) or a string where a number belongs is
            refused, never a traceback.
        """
        if not isinstance(d, dict) or "sem" not in d or "mixing" not in d:
            raise ModelError("a model dict needs at least the keys 'sem' and 'mixing'")
        check_keys(d, _MODEL_KEYS, "model", ModelError)
        mixing = _part("mixing", mixing_from_dict, d["mixing"], MixingError)
        sem = _part("sem", SEM.from_dict, d["sem"], SEMError)
        try:
            return cls._from_parts(d, sem, mixing)
        except ConceptIDError:
            raise
        except _MALFORMED as err:
            raise ModelError(f"malformed model dict: {_reason(err)}") from None

    @classmethod
    def _from_parts(cls, d: dict, sem: SEM, mixing: Mixing) -> ConceptModel:
        readout = d.get("readout")
        return cls(
            sem,
            mixing,
            None if readout is None else as_floats(readout, "readout", ModelError),
            d.get("nuisance_dim", 0),  # the constructor checks both numbers by name
            d.get("nuisance_scale", 1.0),
            contexts := _contexts(d.get("contexts", [{"interventions": []}]), "contexts"),
            _held_out(d.get("held_out", []), contexts),
        )


#: the keys of :meth:`ConceptModel.to_dict`, the only ones :meth:`ConceptModel.from_dict` takes
_MODEL_KEYS = ("sem", "mixing", "readout", "nuisance_dim", "nuisance_scale", "contexts",
               "held_out")  # fmt: skip


_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def _part(key: str, build, value, error: type[ConceptIDError]):
    """``build(value)`` for the part ``key`` of a model dict, each refusal naming the part."""
    try:
        return build(value)
    except ConceptIDError as err:
        raise at(key, err) from None
    except _MALFORMED as err:
        raise error(f"{key}: malformed: {_reason(err)}") from None


def _contexts(items, key: str) -> tuple[Context, ...]:
    """The context dicts under ``key`` of a model dict, each refusal naming its entry."""
    if not isinstance(items, list | tuple):
        raise ModelError(f"'{key}' must be a list of context dicts, got {items!r:.80}")
    return tuple(
        _part(f"{key}[{i}]", Context.from_dict, item, InterventionError)
        for i, item in enumerate(items)
    )


def _held_out(items, contexts: Sequence[Context]) -> tuple[Context, ...]:
    """A model dict's ``held_out``: context dicts, as :meth:`ConceptModel.to_dict` writes them,
    or what a preset's ``held_out`` takes (``"pairs"``, ``"all"``, or lists of target names),
    composed from the training contexts by :func:`composed` (which refuses a name with two
    single-target contexts as ambiguous)."""
    if items is None:  # as a preset takes it: no held-out contexts
        return ()
    if isinstance(items, list | tuple) and all(isinstance(c, dict) for c in items):
        return _contexts(items, "held_out")
    if isinstance(items, list | tuple) and any(isinstance(c, dict) for c in items):
        raise ModelError("'held_out' mixes context dicts and lists of target names; give one "
                         "kind")  # fmt: skip
    lists = isinstance(items, list | tuple) and all(isinstance(g, list | tuple) for g in items)
    if not (isinstance(items, str) or lists):
        raise ModelError(f"'held_out' must be a list of context dicts, \"pairs\", \"all\" or a "
                         f"list of target-name lists, got {items!r:.80}")  # fmt: skip
    return composed([c for c in contexts if len(c) == 1], items)


def _reason(err: Exception) -> str:
    return f"missing key {err}" if isinstance(err, KeyError) else str(err)


def composed(single: Sequence[Context], groups: Sequence[Sequence[str]] | str = "pairs"):
    """Held-out compositions of single-target contexts.

    Parameters
    ----------
    single : sequence of Context
        Single-target contexts (observational ones are ignored).
    groups : "pairs", "all" or sequence of sequences of target names
        ``"pairs"``: every pair of targets; ``"all"``: every subset of size >= 2 (beware: 2^m);
        or an explicit list such as ``[["size", "quad1"], ["quad2", "quad3", "quad4"]]``.

    Returns
    -------
    tuple of Context, named ``do(a,b)``.

    Raises
    ------
    ModelError
        A context with several targets, malformed ``groups``, a group of fewer than two
        targets, a target set given twice (in any order: it would be one context under two
        names), or a group naming a target that more than one single-target context
        intervenes on (which of them to compose is ambiguous).
    InterventionError
        A group naming a target without a single-target context.
    """
    from itertools import combinations

    by_target, twice = {}, set()
    for c in single:
        if len(c) == 1:
            t = str(c.targets[0])
            if t in by_target:
                twice.add(t)
            by_target[t] = c
        elif len(c) > 1:
            raise ModelError(f"compose() takes single-target contexts, got {c.name}")
    targets = list(by_target)
    if isinstance(groups, str):
        if groups == "pairs":
            groups = list(combinations(targets, 2))
        elif groups == "all":
            groups = [g for r in range(2, len(targets) + 1) for g in combinations(targets, r)]
        else:
            raise ModelError(
                f"groups must be 'pairs', 'all' or a list of target lists, got {groups!r}"
            )
    lists = (list, tuple)
    if not isinstance(groups, lists) or not all(
        isinstance(g, lists) and all(isinstance(t, str | int) for t in g) for g in groups
    ):
        raise ModelError(
            f"held-out groups must be 'pairs', 'all' or a list of lists of target names, got "
            f"{groups!r}"
        )
    out, seen = [], {}
    for g in groups:
        g = [str(t) for t in g]
        if frozenset(g) in seen and len(set(g)) == len(g):
            raise ModelError(f"held-out composition {g} is given twice (as {seen[frozenset(g)]} "
                             f"too); give each target set once")  # fmt: skip
        seen[frozenset(g)] = g
        unknown = [t for t in g if t not in by_target]
        if unknown:
            raise InterventionError(
                f"cannot compose {g}: no single-target context for {unknown}; have {targets}"
            )
        if len(g) < 2:
            raise ModelError(f"a held-out composition needs at least two targets, got {g}")
        ambiguous = sorted(twice.intersection(g))
        if ambiguous:
            raise ModelError(f"cannot compose {g}: more than one single-target context "
                             f"({', '.join(ambiguous)}) intervenes on the same target, so which "
                             f"to compose is ambiguous; give the composed contexts explicitly "
                             f"(in a model dict, held_out as context dicts)")  # fmt: skip
        out.append(by_target[g[0]].compose(*(by_target[t] for t in g[1:])))
    return tuple(out)
