"""Interventions with known targets, and contexts (sets of interventions).

An intervention edits the mechanism of one concept ``j`` of an
:class:`~conceptid.simulations.sem.SEM`,
whose mechanism is ``c_j = sum_{i in pa(j)} B_ji phi_i(c_i) + eps_j``:

- :class:`Hard` (perfect, stochastic): ``c_j = eps~_j``, ``eps~_j ~ N(mean, cov)``; all incoming
  edges are cut.
- :class:`Soft`: new incoming weights ``B~_ji`` (for some or all existing parents) and, optionally,
  a new noise law; the parent set is kept.
- :class:`Shift`: the noise mean moves by ``shift`` and, optionally, ``extra_cov`` is added to its
  covariance (sempler's ``shift_interventions``); weights are kept.

A :class:`Context` is a set of interventions on distinct targets. The observational context is the
empty set; contexts compose by union (:meth:`Context.compose`), and applying a composed context
equals applying its parts one after the other.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from .errors import ConceptIDError, UsageError
from .validation import at, check_keys

__all__ = [
    "NOISE_FAMILIES",
    "Context",
    "Hard",
    "Intervention",
    "InterventionError",
    "Shift",
    "Soft",
    "as_context",
    "as_covariance",
    "as_floats",
    "as_vector",
    "symmetrised",
    "check_family",
]


class InterventionError(ConceptIDError):
    """An intervention or context is malformed (unknown target, bad parameters, repeated target)."""


Target = str | int


def _not_a_number(x) -> object:
    """The first entry of ``x`` (a number, an array, a tensor or nested lists) that is not a
    real number but that numpy would convert to one (a string such as ``"1.0"``, a boolean,
    None); the module's ``_NUMBERS`` when every entry is a number. Anything numpy reads as an
    array of numbers (a torch tensor, a pandas Series) passes."""
    if isinstance(x, str | bytes | bool | np.bool_) or x is None:
        return x
    if isinstance(x, list | tuple):
        for v in x:
            bad = _not_a_number(v)
            if bad is not _NUMBERS:
                return bad
        return _NUMBERS
    if isinstance(x, numbers.Number):
        return _NUMBERS
    try:
        a = np.asarray(x)
    except Exception:  # noqa: BLE001  (as_floats names what numpy cannot read)
        return _NUMBERS
    if a.dtype.kind == "O":  # a ragged list is as_floats' to name; a dict or a set is no number
        if a.ndim == 0:
            item = a.item()
            number = isinstance(item, numbers.Number) and not isinstance(item, bool | np.bool_)
            return _NUMBERS if number else item
        return _not_a_number(a.tolist())
    if a.dtype.kind not in "iufc":  # booleans, strings, bytes, dates
        return a.reshape(-1)[0].item() if a.size else _NUMBERS
    return _NUMBERS


_NUMBERS = object()


def as_floats(x, what: str, error: type[ConceptIDError] | None = None) -> np.ndarray:
    """``x`` as a float array; a value that is not real numbers (a string, even one numpy
    would read as a number, a boolean, a ragged list, None in a list, a complex number, whose
    imaginary part numpy would drop with only a warning) raises ``error`` (default
    InterventionError) naming ``what``, never numpy's ValueError or TypeError."""
    bad = _not_a_number(x)
    if bad is not _NUMBERS:
        raise (error or InterventionError)(f"{what} must be numeric, got {bad!r:.80}")
    try:
        complex_ = np.iscomplexobj(x)
        out = None if complex_ else np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise (error or InterventionError)(f"{what} must be numeric, got {x!r}") from None
    if complex_:
        raise (error or InterventionError)(f"{what} must be real, got complex values")
    return out


def as_vector(x, k: int, what: str) -> np.ndarray:
    """A length-``k`` vector; a scalar is broadcast to every coordinate of the block."""
    v = np.atleast_1d(as_floats(x, what)).reshape(-1)
    if v.size == 1 and k > 1:
        v = np.full(k, v[0])
    if v.shape != (k,):
        raise InterventionError(f"{what} must have {k} entries, got shape {np.shape(x)}")
    if not np.all(np.isfinite(v)):
        raise InterventionError(f"{what} contains NaN or infinite values")
    return v


def as_covariance(x, k: int, what: str, *, psd_only: bool = False) -> np.ndarray:
    """A ``(k, k)`` symmetric positive definite (``psd_only``: semi-definite) covariance; a scalar
    is that variance times the identity, a vector the diagonal. InterventionError naming ``what``
    otherwise.

    A matrix symmetric only up to rounding (its entries differ from their transposes by at most
    ``1e-12 + 1e-10`` times its largest entry) is accepted and returned *symmetrised*
    (:func:`symmetrised`): the upper triangle is replaced by the mirror image of the lower one,
    which the sampler's and the population moments' Cholesky factors read, so the generated data
    are unchanged bit for bit; an exactly symmetric matrix is kept as it is. Every reader of a
    model (the sampler, the population moments, the identifiability checker, which reads the
    whole matrix, and the JSON form, re-read through this function) then sees the one symmetric
    matrix, so an exact verdict is about the law the model generates."""
    S = as_floats(x, what)
    if S.ndim == 0 or (S.ndim == 1 and S.size == 1):
        S = S.reshape(1, 1) * np.eye(k) if k > 1 else S.reshape(1, 1)
    elif S.ndim == 1:
        S = np.diag(S)
    if S.shape != (k, k):
        raise InterventionError(f"{what} must be a {k}x{k} covariance, got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise InterventionError(f"{what} contains NaN or infinite values")
    if np.max(np.abs(S - S.T), initial=0.0) > 1e-12 + 1e-10 * np.max(np.abs(S), initial=0.0):
        raise InterventionError(f"{what} must be symmetric")
    S = symmetrised(S)
    eig = np.linalg.eigvalsh(S)
    if psd_only:
        if eig.min() < -1e-12:
            raise InterventionError(
                f"{what} must be positive semi-definite (min eigenvalue {eig.min():.3g})"
            )
    elif eig.min() <= k * np.finfo(float).eps * max(eig.max(), 0.0):
        # at or below the rounding error of the eigenvalues: singular in float64 (the exact
        # [[1, 3], [3, 9]] comes out with min eigenvalue 1e-16)
        raise InterventionError(
            f"{what} must be positive definite: a variance must be > 0 "
            f"(min eigenvalue {eig.min():.3g}, max {eig.max():.3g})"
        )
    return S


def symmetrised(S: np.ndarray) -> np.ndarray:
    """``S`` with its upper triangle replaced by the mirror image of its lower one, where the two
    differ. The lower triangle is what the sampler and the population moments read (through
    their Cholesky factors), so the law the model generates is unchanged bit for bit, and every
    reader, the identifiability checker included, now sees that one symmetric matrix. An
    exactly symmetric ``S`` is kept as it is. A new array."""
    S = np.array(S, dtype=float)
    if not np.array_equal(S, S.T):
        S = np.tril(S) + np.tril(S, -1).T
    return S


@dataclass(frozen=True)
class Intervention:
    """Base class: an intervention on one concept, given by name or index."""

    target: Target

    kind = "intervention"

    def apply(self, sem, j: int, B: np.ndarray, mean: np.ndarray, covs: list, fams: list):
        """Edit the arrays of ``sem`` (a :class:`~conceptid.simulations.sem.SEM`, which imports
        this module, not the other way round) in place for target index ``j`` (called by
        ``SEM.intervene``)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    @classmethod
    def dict_keys(cls) -> tuple[str, ...]:
        """The keys of :meth:`to_dict`: ``kind`` and the fields of the kind."""
        return ("kind", *(f.name for f in fields(cls)))

    @staticmethod
    def from_dict(d: Mapping) -> Intervention:
        """Rebuild any intervention from its :meth:`to_dict` form.

        Raises
        ------
        InterventionError
            For anything but a dict, an unknown ``kind``, a key the kind's :meth:`to_dict` does
            not write (a misspelt key would otherwise leave its default in place), or a missing
            or malformed ``target``.
        """
        kinds = {"hard": Hard, "soft": Soft, "shift": Shift}
        if not isinstance(d, Mapping):
            raise InterventionError(f"an intervention must be a dict with the keys 'kind' (one "
                                    f"of {list(kinds)}) and 'target', got {d!r:.80}")  # fmt: skip
        kind = d.get("kind")
        if not isinstance(kind, str) or kind not in kinds:
            raise InterventionError(
                f"unknown intervention kind {kind!r}; expected one of {list(kinds)}"
            )
        check_keys(d, kinds[kind].dict_keys(), f"{kind} intervention", InterventionError)
        if "target" not in d:
            raise InterventionError(f"a {kind} intervention needs the key 'target'")
        t = d["target"]
        if not isinstance(t, str | int) or isinstance(t, bool):
            raise InterventionError(f"target: must be a concept name or index, got {t!r:.80}")
        return kinds[kind]._from_dict(d)


def _target_json(t: Target):
    return int(t) if isinstance(t, int | np.integer) else t


@dataclass(frozen=True)
class Hard(Intervention):
    """Hard stochastic intervention ``do(c_j ~ family(mean, cov))``; cuts all incoming edges."""

    mean: object = 0.0
    cov: object = 1.0
    family: str = "gaussian"
    kind = "hard"

    def apply(self, sem, j, B, mean, covs, fams):
        k = sem.block_sizes[j]
        sl = sem.slices[j]
        B[sl, :] = 0.0
        mean[sl] = as_vector(self.mean, k, f"mean of the hard intervention on {sem.names[j]!r}")
        covs[j] = as_covariance(self.cov, k, f"cov of the hard intervention on {sem.names[j]!r}")
        fams[j] = check_family(self.family)

    def to_dict(self) -> dict:
        return {
            "kind": "hard",
            "target": _target_json(self.target),
            "mean": np.asarray(self.mean, dtype=float).tolist(),
            "cov": np.asarray(self.cov, dtype=float).tolist(),
            "family": self.family,
        }

    @classmethod
    def _from_dict(cls, d):
        return cls(d["target"], d.get("mean", 0.0), d.get("cov", 1.0), d.get("family", "gaussian"))


@dataclass(frozen=True)
class Soft(Intervention):
    """Soft intervention: new weights on (some of) the existing incoming edges, optionally a new
    noise mean/covariance. ``weights`` maps a parent (name or index) to its ``(k_j, k_i)`` block."""

    weights: Mapping = field(default_factory=dict)
    mean: object = None
    cov: object = None
    kind = "soft"

    def apply(self, sem, j, B, mean, covs, fams):
        sl = sem.slices[j]
        k = sem.block_sizes[j]
        parents = set(sem.graph.parents(j))
        for p, w in self.weights.items():
            i = sem.resolve(p)
            if i not in parents:
                raise InterventionError(
                    f"soft intervention on {sem.names[j]!r} gives a weight for {sem.names[i]!r}, "
                    f"which is not a parent; parents are {[sem.names[q] for q in sorted(parents)]}"
                )
            W = as_floats(w, f"soft weight {sem.names[i]!r} -> {sem.names[j]!r}")
            ki = sem.block_sizes[i]
            # the block as given, or a scalar / flat vector where one side is 1 (unambiguous);
            # a transposed or flattened block is refused, never reshaped into another one
            plain = W.ndim <= 1 and (k == 1 or ki == 1)
            if W.shape != (k, ki) and not (plain and W.size == k * ki):
                raise InterventionError(
                    f"soft weight {sem.names[i]!r} -> {sem.names[j]!r} must be a "
                    f"({k}, {sem.block_sizes[i]}) block, got shape {W.shape}"
                )
            W = W.reshape(k, sem.block_sizes[i])
            if not np.all(np.isfinite(W)):
                raise InterventionError(
                    f"soft weight {sem.names[i]!r} -> {sem.names[j]!r} is not finite"
                )
            B[sl, sem.slices[i]] = W
        if self.mean is not None:
            mean[sl] = as_vector(self.mean, k, f"mean of the soft intervention on {sem.names[j]!r}")
        if self.cov is not None:
            covs[j] = as_covariance(
                self.cov, k, f"cov of the soft intervention on {sem.names[j]!r}"
            )

    def to_dict(self) -> dict:
        return {
            "kind": "soft",
            "target": _target_json(self.target),
            # [parent, block] pairs: JSON object keys would turn an index parent into a string
            "weights": [
                [_target_json(p), np.asarray(w, dtype=float).tolist()]
                for p, w in self.weights.items()
            ],
            "mean": None if self.mean is None else np.asarray(self.mean, dtype=float).tolist(),
            "cov": None if self.cov is None else np.asarray(self.cov, dtype=float).tolist(),
        }

    @classmethod
    def _from_dict(cls, d):
        w = d.get("weights", [])
        if isinstance(w, Mapping):
            pairs = list(w.items())
        elif isinstance(w, list | tuple) and all(
            isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[0], str | int) for p in w
        ):
            pairs = [tuple(p) for p in w]
        else:
            raise InterventionError(f"weights: must be a list of [parent, block] pairs, got "
                                    f"{w!r:.80}")  # fmt: skip
        return cls(d["target"], dict(pairs), d.get("mean"), d.get("cov"))

    def __hash__(self) -> int:  # weights is a dict
        return hash(("soft", self.target))


@dataclass(frozen=True)
class Shift(Intervention):
    """Shift intervention: the noise mean moves by ``shift``; ``extra_cov`` (PSD) is added to the
    noise covariance. Weights and parents are kept."""

    shift: object = 1.0
    extra_cov: object = None
    kind = "shift"

    def apply(self, sem, j, B, mean, covs, fams):
        sl = sem.slices[j]
        k = sem.block_sizes[j]
        mean[sl] = mean[sl] + as_vector(self.shift, k, f"shift on {sem.names[j]!r}")
        if self.extra_cov is not None:
            add = as_covariance(self.extra_cov, k, f"extra_cov on {sem.names[j]!r}", psd_only=True)
            covs[j] = covs[j] + add

    def to_dict(self) -> dict:
        return {
            "kind": "shift",
            "target": _target_json(self.target),
            "shift": np.asarray(self.shift, dtype=float).tolist(),
            "extra_cov": None
            if self.extra_cov is None
            else np.asarray(self.extra_cov, dtype=float).tolist(),
        }

    @classmethod
    def _from_dict(cls, d):
        return cls(d["target"], d.get("shift", 1.0), d.get("extra_cov"))


NOISE_FAMILIES = ("gaussian", "laplace", "uniform")


def check_family(f: str) -> str:
    """``f`` if it is one of :data:`NOISE_FAMILIES`, else InterventionError."""
    if f not in NOISE_FAMILIES:
        raise InterventionError(f"noise family must be one of {NOISE_FAMILIES}, got {f!r}")
    return f


@dataclass(frozen=True)
class Context:
    """A set of interventions on distinct targets; the empty context is observational.

    Parameters
    ----------
    interventions : iterable of Intervention
    name : str, optional
        Display name; defaults to ``"obs"`` or ``"do(a,b)"`` built from the targets.
    """

    interventions: tuple[Intervention, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        ivs = tuple(self.interventions)
        for iv in ivs:
            if not isinstance(iv, Intervention):
                raise InterventionError(f"a context holds Intervention objects, got {iv!r}")
        targets = [iv.target for iv in ivs]
        if len(set(targets)) != len(targets):
            dup = sorted({str(t) for t in targets if targets.count(t) > 1})
            raise InterventionError(
                f"a context may intervene on each concept once; repeated: {dup}"
            )
        object.__setattr__(self, "interventions", ivs)
        if not self.name:
            label = "obs" if not ivs else "do(" + ",".join(str(t) for t in targets) + ")"
            object.__setattr__(self, "name", label)

    @classmethod
    def observational(cls) -> Context:
        """The empty context."""
        return cls((), "obs")

    @property
    def targets(self) -> tuple[Target, ...]:
        """The intervened concepts, in the order given."""
        return tuple(iv.target for iv in self.interventions)

    @property
    def is_observational(self) -> bool:
        return not self.interventions

    def compose(self, *others: Context, name: str = "") -> Context:
        """Union with other contexts on disjoint targets (raises on a shared target)."""
        ivs = list(self.interventions)
        for o in others:
            ivs.extend(o.interventions)
        return Context(tuple(ivs), name)

    def to_dict(self) -> dict:
        return {"name": self.name, "interventions": [iv.to_dict() for iv in self.interventions]}

    @classmethod
    def from_dict(cls, d: Mapping) -> Context:
        """Inverse of :meth:`to_dict`; InterventionError for a key it does not write, and for
        each malformed intervention, naming it (``interventions[1]: ...``)."""
        if not isinstance(d, Mapping) or "interventions" not in d:
            raise InterventionError(f"a context dict needs the key 'interventions' (a list of "
                                    f"intervention dicts), got {d!r:.80}")  # fmt: skip
        check_keys(d, (f.name for f in fields(cls)), "context", InterventionError)
        items, name = d["interventions"], d.get("name")
        name = "" if name is None else name
        if not isinstance(items, list | tuple):
            raise InterventionError(f"interventions: must be a list of intervention dicts, got "
                                    f"{items!r:.80}")  # fmt: skip
        if not isinstance(name, str):
            raise InterventionError(f"name: must be a string, got {name!r:.80}")
        ivs = []
        for i, x in enumerate(items):
            try:
                ivs.append(Intervention.from_dict(x))
            except InterventionError as err:
                raise at(f"interventions[{i}]", err) from None
        return cls(tuple(ivs), name)

    def __iter__(self):
        return iter(self.interventions)

    def __len__(self) -> int:
        return len(self.interventions)


def as_context(ctx: Context | Intervention | Iterable[Intervention] | None) -> Context:
    """Accept a Context, a single intervention, an iterable of them, or None (observational).

    Raises
    ------
    UsageError
        ``ctx`` is none of these (a number, say).
    InterventionError
        An iterable holding something other than interventions, or a repeated target.
    """
    if ctx is None:
        return Context.observational()
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, Intervention):
        return Context((ctx,))
    if not isinstance(ctx, Iterable):
        raise UsageError(f"a context must be a Context, an intervention, a list of them or None, "
                         f"got {ctx!r:.80}")  # fmt: skip
    return Context(tuple(ctx))
