"""Mixing functions ``f``: from the embedding ``e`` (``(n, d)``) to observations ``x``.

- :class:`LinearMixing`: ``x = e A^T`` with ``A`` ``(p, d)`` of full column rank and a chosen
  condition number; injective, with the pseudo-inverse as its inverse on the image.
- :class:`MLPMixing`: an invertible MLP. Each hidden layer is ``u -> sigma(W u + b)`` with ``W`` of
  full column rank (widths never shrink) and ``sigma`` strictly increasing (leaky-ReLU, or the
  smooth ``s u + (1 - s) softplus(u)``); the last layer is linear. A composition of injective
  maps is injective, so the mixing is injective *by construction*, and :meth:`MLPMixing.inverse`
  computes the inverse on the image exactly (leaky-ReLU) or to machine precision (smooth, by
  Newton's method).
- :class:`ImageMixing`: the quad-scene renderer of :mod:`conceptid.simulations.render`. It is *not*
injective
  everywhere (rotational symmetries of the shapes); the identifiability layer checks that
  numerically.
- :class:`InjectiveQuadMixing`: the identifiable quad scene (a Gaussian blob alone in its channel,
  quadrant shades in the others); injective by construction, with a closed-form inverse
  (proofs/lemma_injective_renderer.md).
- :class:`FunctionMixing`: any Python function of the embedding, given with its input dimension
  (``FunctionMixing(fn, d)``; a :class:`~conceptid.simulations.model.ConceptModel` wraps a plain
  callable
  this way itself). Nothing is known about it by construction: the identifiability layer checks
  A3 for it numerically, and never counts that as a proof.

Every mixing has ``input_dim``, ``output_shape``, ``__call__``, ``to_dict`` and
:func:`mixing_from_dict`.

Your own mixing
---------------
Either wrap a function (the simplest route; it serialises as a ``module:function`` reference)::

    # mypkg/scenes.py
    def render(e):            # (n, 4) float array -> (n, 64, 64) array
        ...

    model = ConceptModel(sem, render, readout, nuisance_dim=1)   # or FunctionMixing(render, 4)

or subclass :class:`Mixing`, giving ``input_dim`` and ``output_shape`` (attributes or
properties), ``__call__(e)`` for an ``(n, input_dim)`` float array returning ``(n,
*output_shape)``, a ``kind`` string, and ``to_dict`` if models that use it are to be saved (the
base class refuses to serialise, naming the class). Set ``injective_by_construction = True`` only
if you can prove it; the check of A3 does not read it for a custom class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from .errors import MixingError
from .interventions import as_floats
from .validation import check_keys, check_number

__all__ = [
    "FunctionMixing",
    "ImageMixing",
    "InjectiveQuadMixing",
    "LinearMixing",
    "MLPMixing",
    "Mixing",
    "MixingError",
    "mixing_from_dict",
    "mixing_from_reference",
    "well_conditioned_matrix",
]


def well_conditioned_matrix(
    rows: int, cols: int, rng: np.random.Generator, condition_number: float = 5.0
) -> np.ndarray:
    """A random ``(rows, cols)`` matrix of rank ``min(rows, cols)`` with singular values spread
    geometrically from 1 to ``1 / condition_number`` (so its condition number is exactly that)."""
    check_number(condition_number, "condition_number", integer=False, error=MixingError)
    r = min(rows, cols)
    U = np.linalg.qr(rng.standard_normal((rows, r)))[0]
    V = np.linalg.qr(rng.standard_normal((cols, r)))[0]
    s = np.geomspace(1.0, 1.0 / condition_number, r) if r > 1 else np.ones(1)
    return (U * s) @ V.T


def _check_input(e: np.ndarray, d: int, who: str) -> np.ndarray:
    try:
        complex_ = np.iscomplexobj(e)
        arr = np.asarray(e)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(float)
    except (TypeError, ValueError):
        raise MixingError(f"{who}: e must be a real array of shape (n, {d}), got {e!r}") from None
    if complex_:
        raise MixingError(f"{who}: e must be real, got a complex array")
    e = arr
    if e.ndim != 2 or e.shape[1] != d:
        raise MixingError(f"{who}: e must have shape (n, {d}), got {e.shape}")
    if not np.all(np.isfinite(e)):
        raise MixingError(f"{who}: e contains NaN or infinite values")
    return e


class Mixing:
    """Base class of mixing functions ``f``: ``(n, input_dim)`` embeddings to ``(n,
    *output_shape)`` observations (see the module docstring for writing your own)."""

    kind = "mixing"
    input_dim: int
    output_shape: tuple[int, ...]
    #: whether injectivity holds by construction (else it is to be checked numerically)
    injective_by_construction = False

    def __call__(self, e: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """Raises :class:`MixingError`: a subclass that is to be saved must define ``to_dict``
        (and be rebuilt by :func:`mixing_from_dict`), or wrap a module-level function in
        :class:`FunctionMixing`, which serialises as a reference."""
        raise MixingError(
            f"cannot serialise a mixing of class {type(self).__name__}: define its to_dict, or "
            "wrap a module-level function in FunctionMixing (saved as a module:function reference)"
        )


@dataclass(frozen=True, eq=False)
class LinearMixing(Mixing):
    """``x = e A^T``; ``A`` is ``(p, d)`` with ``p >= d`` and full column rank."""

    A: np.ndarray
    kind = "linear"
    injective_by_construction = True

    def __post_init__(self) -> None:
        A = np.array(self.A, dtype=float)
        if A.ndim != 2 or A.shape[0] < A.shape[1]:
            raise MixingError(f"A must be (p, d) with p >= d, got shape {A.shape}")
        if not np.all(np.isfinite(A)):
            raise MixingError("A contains NaN or infinite values")
        s = np.linalg.svd(A, compute_uv=False)
        if s[-1] <= 1e-10 * s[0]:
            raise MixingError("A must have full column rank (linear mixing must be injective)")
        A.setflags(write=False)
        object.__setattr__(self, "A", A)

    @classmethod
    def random(
        cls, d: int, p: int, rng: np.random.Generator, condition_number: float = 5.0
    ) -> LinearMixing:
        """A random mixing with the given condition number."""
        if p < d:
            raise MixingError(f"p (observed dimension) must be >= d = {d}, got {p}")
        return cls(well_conditioned_matrix(p, d, rng, condition_number))

    @property
    def input_dim(self) -> int:  # type: ignore[override]
        return self.A.shape[1]

    @property
    def output_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.A.shape[0],)

    @property
    def condition_number(self) -> float:
        s = np.linalg.svd(self.A, compute_uv=False)
        return float(s[0] / s[-1])

    def __call__(self, e: np.ndarray) -> np.ndarray:
        e = _check_input(e, self.input_dim, "LinearMixing")
        return e @ self.A.T.astype(e.dtype)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """The embedding of observations on the image (least squares)."""
        return np.linalg.lstsq(self.A, np.asarray(x, dtype=float).T, rcond=None)[0].T

    def to_dict(self) -> dict:
        return {"kind": "linear", "A": self.A.tolist()}


def _softplus(u):
    return np.logaddexp(0.0, u)


@dataclass(frozen=True, eq=False)
class MLPMixing(Mixing):
    """An injective MLP: hidden layers ``sigma(W u + b)``, a final linear layer ``W u + b``.

    Parameters
    ----------
    weights : sequence of ndarray
        ``W_l`` of shape ``(p_l, p_{l-1})`` with ``p_l >= p_{l-1}`` and full column rank.
    biases : sequence of ndarray
        ``b_l`` of shape ``(p_l,)``.
    activation : {"leaky_relu", "smooth"}
        ``leaky_relu``: ``max(u, s u)``; ``smooth``: ``s u + (1 - s) softplus(u)`` (C-infinity,
        derivative in ``(s, 1)``). Both strictly increasing.
    slope : float in (0, 1)
    """

    weights: tuple
    biases: tuple
    activation: str = "leaky_relu"
    slope: float = 0.2
    kind = "mlp"
    injective_by_construction = True
    _pinvs: tuple = field(default=(), repr=False)

    def __post_init__(self) -> None:
        Ws = tuple(np.array(W, dtype=float) for W in self.weights)
        bs = tuple(np.array(b, dtype=float).reshape(-1) for b in self.biases)
        if not Ws or len(Ws) != len(bs):
            raise MixingError("weights and biases must be non-empty and of the same length")
        if self.activation not in ("leaky_relu", "smooth"):
            raise MixingError(
                f"activation must be 'leaky_relu' or 'smooth', got {self.activation!r}"
            )
        if not 0 < self.slope < 1:
            raise MixingError(f"slope must lie in (0, 1), got {self.slope}")
        for layer, (W, b) in enumerate(zip(Ws, bs)):
            if W.ndim != 2 or W.shape[0] < W.shape[1] or b.shape != (W.shape[0],):
                raise MixingError(
                    f"layer {layer}: W must be (p_out, p_in) with p_out >= p_in and b (p_out,); "
                    f"got {W.shape} and {b.shape}"
                )
            if layer and W.shape[1] != Ws[layer - 1].shape[0]:
                raise MixingError(f"layer {layer}: input width {W.shape[1]} != previous output")
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise MixingError(f"layer {layer}: weights contain NaN or infinite values")
            s = np.linalg.svd(W, compute_uv=False)
            if s[-1] <= 1e-10 * s[0]:
                raise MixingError(f"layer {layer}: W must have full column rank (injectivity)")
            W.setflags(write=False)
            b.setflags(write=False)
        object.__setattr__(self, "weights", Ws)
        object.__setattr__(self, "biases", bs)
        object.__setattr__(self, "_pinvs", tuple(np.linalg.pinv(W) for W in Ws))

    @classmethod
    def random(
        cls,
        d: int,
        p: int,
        rng: np.random.Generator,
        *,
        n_layers: int = 3,
        hidden: int | None = None,
        activation: str = "leaky_relu",
        slope: float = 0.2,
        condition_number: float = 3.0,
    ) -> MLPMixing:
        """A random injective MLP ``R^d -> R^p`` with ``n_layers`` layers (``n_layers - 1``
        nonlinear); hidden width ``hidden`` (default ``max(d, p)``) must lie in ``[d, p]``."""
        check_number(n_layers, "n_layers", error=MixingError)
        hidden = max(d, p) if hidden is None else hidden
        if not d <= hidden <= p:
            raise MixingError(
                f"hidden must lie in [d, p] = [{d}, {p}] to keep every layer injective"
            )
        widths = [d] + [hidden] * (n_layers - 1) + [p]
        Ws, bs = [], []
        for a, b in zip(widths[:-1], widths[1:]):
            Ws.append(np.sqrt(b / a) * well_conditioned_matrix(b, a, rng, condition_number))
            bs.append(0.1 * rng.standard_normal(b))
        return cls(tuple(Ws), tuple(bs), activation, slope)

    @property
    def input_dim(self) -> int:  # type: ignore[override]
        return self.weights[0].shape[1]

    @property
    def output_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.weights[-1].shape[0],)

    def _act(self, u):
        s = self.slope
        if self.activation == "leaky_relu":
            return np.where(u > 0, u, s * u)
        return s * u + (1 - s) * _softplus(u)

    def _act_inv(self, y):
        s = self.slope
        if self.activation == "leaky_relu":
            return np.where(y > 0, y, y / s)
        # sigma is convex and increasing with sigma(u) >= u, so Newton from u0 = y (right of the
        # root) decreases monotonically to it.
        u = np.array(y, dtype=float)
        for _ in range(100):
            g = s * u + (1 - s) * _softplus(u) - y
            step = g / (s + (1 - s) / (1 + np.exp(-u)))
            u -= step
            if np.max(np.abs(step), initial=0.0) < 1e-13 * (1 + np.max(np.abs(u), initial=0.0)):
                break
        return u

    def __call__(self, e: np.ndarray) -> np.ndarray:
        u = _check_input(e, self.input_dim, "MLPMixing")
        last = len(self.weights) - 1
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            u = u @ W.T.astype(u.dtype) + b.astype(u.dtype)
            if layer < last:
                u = self._act(u)
        return u

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """The embedding ``e`` with ``f(e) = x`` for ``x`` on the image (``(n, d)``)."""
        y = np.asarray(x, dtype=float)
        last = len(self.weights) - 1
        for layer in range(last, -1, -1):
            if layer < last:
                y = self._act_inv(y)
            y = (y - self.biases[layer]) @ self._pinvs[layer].T
        return y

    def to_dict(self) -> dict:
        return {
            "kind": "mlp",
            "weights": [W.tolist() for W in self.weights],
            "biases": [b.tolist() for b in self.biases],
            "activation": self.activation,
            "slope": self.slope,
        }


@dataclass(frozen=True, eq=False)
class ImageMixing(Mixing):
    """The quad-scene renderer as a mixing: ``e`` (8 concepts, optionally 2 position nuisances)
    to ``(size, size, 3)`` RGB images in ``[0, 1]``. Not injective everywhere: see
    :mod:`conceptid.simulations.render`."""

    size: int = 32
    nuisance: bool = False
    kind = "image"
    injective_by_construction = False

    def __post_init__(self) -> None:
        check_number(self.size, "size", minimum=8, error=MixingError)

    @property
    def input_dim(self) -> int:  # type: ignore[override]
        return 10 if self.nuisance else 8

    @property
    def output_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (int(self.size), int(self.size), 3)

    def __call__(self, e: np.ndarray, *, progress: bool = False) -> np.ndarray:
        from .render import render_quad

        e = _check_input(e, self.input_dim, "ImageMixing")
        return render_quad(e, int(self.size), progress=progress)

    def to_dict(self) -> dict:
        return {"kind": "image", "size": int(self.size), "nuisance": bool(self.nuisance)}


@dataclass(frozen=True, eq=False)
class InjectiveQuadMixing(ImageMixing):
    """The identifiable quad scene as a mixing
    (:func:`conceptid.simulations.render.render_quad_injective`):
    ``e`` (8 concepts, optionally 2 position nuisances) to ``(size, size, 3)`` float64 RGB
    images in ``(0, 1)``.

    Injective by construction, smooth, with the closed-form continuous inverse
    :meth:`inverse` (proofs/lemma_injective_renderer.md): quadrant shades in the red channel,
    the object a Gaussian blob alone in green and blue, whose log-covariance carries ``size``,
    ``shape`` and ``orientation`` linearly and whose log is a quadratic in the pixel
    coordinates. This float renderer is the mixing ``f`` that
    :func:`conceptid.identifiability.check` judges (A3 holds by construction); a stored dataset
    quantises
    the images to uint8, which is not injective and is not what the theorem speaks of.

    Parameters
    ----------
    size : int
        Image width and height in pixels, at least 8.
    nuisance : bool
        Whether ``e`` carries the blob's position ``pos_x, pos_y`` after the 8 concepts.

    Raises
    ------
    MixingError
        At construction for a ``size`` that is not an integer >= 8; when called, for an ``e``
        that is not a finite ``(n, input_dim)`` array.
    """

    injective_by_construction = True

    def __call__(self, e: np.ndarray, *, progress: bool = False) -> np.ndarray:
        from .render import render_quad_injective

        e = _check_input(e, self.input_dim, "InjectiveQuadMixing")
        return render_quad_injective(e, int(self.size), progress=progress)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """The embedding ``e`` ``(n, input_dim)`` of images ``x`` ``(n, size, size, 3)`` on the
        image of the mixing (:func:`conceptid.simulations.render.invert_quad_injective`; raises
        :class:`MixingError` for anything else, including another size)."""
        from .render import invert_quad_injective

        shape = getattr(x, "shape", None)
        if shape is None or tuple(shape[1:]) != self.output_shape:
            want = ", ".join(map(str, self.output_shape))
            raise MixingError(f"InjectiveQuadMixing.inverse: x must have shape (n, {want}), "
                              f"got {shape}")  # fmt: skip
        return invert_quad_injective(x, nuisance=bool(self.nuisance))

    def to_dict(self) -> dict:
        return {"kind": "image", "renderer": "injective", "size": int(self.size),
                "nuisance": bool(self.nuisance)}  # fmt: skip


def _reference(fn) -> str | None:
    """``module:qualname`` of ``fn`` if importing it gives back the very same object, else None."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not name or "<" in name or module == "__main__":
        # a lambda, a closure or a function of a script: not importable by another process
        return None
    try:
        return f"{module}:{name}" if _resolve(f"{module}:{name}") is fn else None
    except MixingError:
        return None


def _resolve(ref: str):
    """The object named by ``"package.module:name"`` (``name`` may be dotted)."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise MixingError(
            f"a mixing reference must look like 'package.module:function', got {ref!r}"
        )
    module, name = ref.split(":")
    if not module or not name:
        raise MixingError(
            f"a mixing reference must look like 'package.module:function', got {ref!r}"
        )
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise MixingError(f"cannot import module {module!r} of mixing {ref!r}: {err}") from None
    except (Exception, SystemExit) as err:  # noqa: BLE001  (the user's module failed as it ran)
        raise MixingError(f"cannot import module {module!r} of mixing {ref!r}: "
                          f"{type(err).__name__}: {err}") from None  # fmt: skip
    for part in name.split("."):
        if not hasattr(obj, part):
            raise MixingError(f"module {module!r} has no attribute {name!r} (mixing {ref!r})")
        obj = getattr(obj, part)
    return obj


class FunctionMixing(Mixing):
    """A mixing given as a Python function.

    Parameters
    ----------
    fn : callable
        ``fn(e)`` maps an ``(n, input_dim)`` float64 array to an ``(n, ...)`` array of real
        numbers (float or integer; integer outputs, such as uint8 images, make the map piecewise
        constant, and the check of A3 says so).
    input_dim : int
        ``d``, the embedding dimension ``fn`` takes.
    output_shape : tuple of int, optional
        The shape of one observation; by default read off ``fn`` at one point (``e = 0``) the
        first time it is asked for.

    Notes
    -----
    ``to_dict`` records ``fn`` as an importable ``module:qualname`` reference, and raises
    :class:`MixingError` when ``fn`` cannot be imported back that way (a lambda, a closure, a
    function defined in a script run as ``__main__``): define it at module level in an
    importable module. Rebuilding a model from its dict imports that module.

    Raises
    ------
    MixingError
        At construction, if ``fn`` is not callable or ``input_dim`` is not a positive integer;
        when called, if the input is not a finite ``(n, input_dim)`` array or ``fn`` returns the
        wrong number of rows.
    """

    kind = "function"
    injective_by_construction = False

    def __init__(self, fn, input_dim: int, output_shape: tuple | None = None) -> None:
        if not callable(fn) or isinstance(fn, type):
            raise MixingError(f"a function mixing needs a function, got {type(fn).__name__}")
        d = check_number(input_dim, "input_dim", error=MixingError)
        self.fn = fn
        self.input_dim = d
        self._shape = None if output_shape is None else tuple(int(k) for k in output_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        if self._shape is None:
            self._shape = tuple(int(k) for k in self(np.zeros((1, self.input_dim))).shape[1:])
        return self._shape

    @property
    def known_output_shape(self) -> tuple[int, ...] | None:
        """:attr:`output_shape` when it is known without calling the function (given, or seen
        in an earlier call), else None."""
        return self._shape

    def __repr__(self) -> str:
        return f"FunctionMixing({self.name}, input_dim={self.input_dim})"

    @property
    def name(self) -> str:
        """``module:qualname`` of the function (or its repr when it has none)."""
        return _reference(self.fn) or getattr(self.fn, "__qualname__", repr(self.fn))

    def __call__(self, e: np.ndarray) -> np.ndarray:
        e = _check_input(e, self.input_dim, f"mixing {self.name}")
        try:  # the user's function: what it raises is named, as bad input, not a traceback
            out = np.asarray(self.fn(e))
        except (Exception, SystemExit) as err:  # noqa: BLE001  (sys.exit named as a mixing too)
            raise MixingError(f"mixing {self.name} failed on an array of shape {e.shape}: "
                              f"{type(err).__name__}: {err}") from err  # fmt: skip
        if out.ndim < 1 or out.shape[0] != e.shape[0]:
            raise MixingError(
                f"mixing {self.name} must map (n, {self.input_dim}) to (n, ...); for n = "
                f"{e.shape[0]} it returned shape {out.shape}"
            )
        return out

    def to_dict(self) -> dict:
        ref = _reference(self.fn)
        if ref is None:
            raise MixingError(
                f"cannot serialise the function mixing {self.name}: it is not importable as "
                "'module:function' (define it at module level in an importable module)"
            )
        return {"kind": "function", "ref": ref, "input_dim": self.input_dim}


def mixing_from_reference(ref: str, input_dim: int) -> Mixing:
    """The mixing named by a reference.

    Parameters
    ----------
    ref : str
        ``"package.module:name"`` (``name`` may be dotted, e.g. ``module:Class.method``).
    input_dim : int
        The embedding dimension ``d`` of the model the mixing is for.

    Returns
    -------
    Mixing
        A :class:`Mixing` instance named by ``ref`` as it is, or a function wrapped in
        :class:`FunctionMixing` with ``input_dim``.

    Raises
    ------
    MixingError
        When the reference is malformed or cannot be imported, names neither a function nor a
        Mixing instance, or names a Mixing that takes another input dimension.
    """
    obj = _resolve(ref)
    if isinstance(obj, Mixing):
        if obj.input_dim != input_dim:
            raise MixingError(
                f"mixing {ref!r} takes {obj.input_dim} inputs, the model has {input_dim}"
            )
        return obj
    if isinstance(obj, type) or not callable(obj):
        raise MixingError(f"{ref!r} is not a function or a Mixing instance")
    return FunctionMixing(obj, input_dim)


#: per kind, the keys :meth:`Mixing.to_dict` writes (``renderer``: InjectiveQuadMixing's), the
#: only ones :func:`mixing_from_dict` takes, and those it needs
_MIXING_KEYS = {
    "linear": ("kind", "A"),
    "mlp": ("kind", "weights", "biases", "activation", "slope"),
    "image": ("kind", "renderer", "size", "nuisance"),
    "function": ("kind", "ref", "input_dim"),
}
_REQUIRED = {"linear": ("A",), "mlp": ("weights", "biases"), "function": ("ref", "input_dim")}


def mixing_from_dict(d: dict) -> Mixing:
    """Rebuild a mixing from its ``to_dict`` form.

    Raises
    ------
    MixingError
        For an unknown ``kind``, a key the kind's ``to_dict`` does not write (a misspelt key
        would otherwise leave its default in place), a missing key, or a malformed value, naming
        the key.
    """
    kind = d.get("kind") if isinstance(d, dict) else None
    if not isinstance(kind, str) or kind not in _MIXING_KEYS:
        raise MixingError(
            f"unknown mixing kind {kind!r}; expected 'linear', 'mlp', 'image' or 'function'"
        )
    check_keys(d, _MIXING_KEYS[kind], f"{kind} mixing", MixingError)
    missing = [k for k in _REQUIRED.get(kind, ()) if k not in d]
    if missing:
        raise MixingError(f"a {kind} mixing dict is missing the keys {missing}")
    if kind == "linear":
        return LinearMixing(as_floats(d["A"], "A", MixingError))
    if kind == "mlp":
        layers = {}
        for key in ("weights", "biases"):
            if not isinstance(d[key], list | tuple):
                raise MixingError(f"{key}: must be a list of arrays, one per layer, got "
                                  f"{d[key]!r:.80}")  # fmt: skip
            layers[key] = tuple(as_floats(a, f"{key}[{i}]", MixingError)
                                for i, a in enumerate(d[key]))  # fmt: skip
        slope = check_number(d.get("slope", 0.2), "slope", integer=False, minimum=0,
                             exclusive=True, error=MixingError)  # fmt: skip
        return MLPMixing(layers["weights"], layers["biases"], d.get("activation", "leaky_relu"),
                         slope)  # fmt: skip
    if kind == "image":
        renderer = d.get("renderer", "quad")
        if renderer not in ("quad", "injective"):
            raise MixingError(
                f"unknown image renderer {renderer!r}; expected 'quad' or 'injective'"
            )
        nuisance = d.get("nuisance", False)
        if not isinstance(nuisance, bool):
            raise MixingError(f"nuisance must be true or false, got {nuisance!r:.80}")
        cls = InjectiveQuadMixing if renderer == "injective" else ImageMixing
        return cls(d.get("size", 32), nuisance)
    input_dim = check_number(d["input_dim"], "input_dim", error=MixingError)
    return mixing_from_reference(d["ref"], input_dim)
