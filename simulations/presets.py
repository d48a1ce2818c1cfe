"""Context designs and ready-made models: ``chain``, ``random`` (Erdos-Renyi; the function is
:func:`random_graph_model`, a name that does not shadow the standard library) and ``quad``.

A *design* is the observational context plus one single-concept intervention context per targeted
concept (the training contexts), and held-out composed contexts (every pair, all subsets, or a
chosen list) for out-of-distribution tests. Every preset returns a :class:`ConceptModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .graphs import DAG, erdos_renyi
from .graphs import chain as chain_graph
from .interventions import Context, Hard, InterventionError, Shift, Soft
from .mixing import (
    ImageMixing,
    InjectiveQuadMixing,
    LinearMixing,
    Mixing,
    MixingError,
    MLPMixing,
)
from .model import ConceptModel, ModelError, composed, random_readout
from .sem import SEM, random_sem
from .validation import check_number, check_rng, is_number

__all__ = [
    "PRESETS",
    "QUAD_EDGES",
    "build_preset",
    "make_mixing",
    "quad",
    "single_target_contexts",
]


def single_target_contexts(
    sem: SEM,
    rng: np.random.Generator,
    targets: Sequence[str] | None = None,
    kind: str = "hard",
    *,
    mean_range: tuple[float, float] = (1.0, 2.0),
    var_range: tuple[float, float] = (0.5, 1.5),
) -> tuple[Context, ...]:
    """One intervention context per target (default: every concept), drawn at random.

    ``hard``: ``do(c_j ~ N(s, Q diag(U(var_range)) Q^T))``, each coordinate of the mean ``s``
    drawn on its own as ``+-U(mean_range)`` (a random sign and size per coordinate of a block)
    and ``Q`` a random rotation; ``shift``: the noise mean moves by such an ``s``; ``soft``:
    every incoming weight is redrawn as
    ``-B_ji * U(0.5, 1.5)`` (sign flipped, so the mechanism surely changes) and the noise variance
    rescaled by ``U(var_range)``.
    """
    targets = list(sem.names) if targets is None else [sem.names[sem.resolve(t)] for t in targets]
    out = []
    for t in targets:
        j = sem.resolve(t)
        k = sem.block_sizes[j]
        sign = rng.choice([-1.0, 1.0], k)
        mean = sign * rng.uniform(*mean_range, k)
        if kind == "hard":
            Q = np.linalg.qr(rng.standard_normal((k, k)))[0] if k > 1 else np.ones((1, 1))
            cov = Q @ np.diag(rng.uniform(*var_range, k)) @ Q.T
            iv = Hard(t, mean, cov)
        elif kind == "shift":
            iv = Shift(t, mean)
        elif kind == "soft":
            sl = sem.slices[j]
            w = {
                sem.names[i]: -sem.weights[sl, sem.slices[i]] * rng.uniform(0.5, 1.5)
                for i in sem.graph.parents(j)
            }
            iv = Soft(t, w, None, sem.noise_cov[j] * rng.uniform(*var_range))
        else:
            raise InterventionError(f"kind must be 'hard', 'shift' or 'soft', got {kind!r}")
        out.append(Context((iv,)))
    return (Context.observational(), *out)


def make_mixing(
    kind: str, d: int, rng: np.random.Generator, *, p: int | None = None, **kwargs
) -> Mixing:
    """A mixing ``R^d -> R^p`` of kind ``identity``, ``linear`` or ``mlp`` (default ``p = 2d``)."""
    if kind == "identity":  # x is the embedding itself: no size, no arguments to honour
        if p is not None and int(p) != d:
            raise MixingError(f"mixing 'identity' observes the {d} embedding dimensions "
                              f"themselves; p = {p} cannot apply (leave p out)")  # fmt: skip
        if kwargs:
            raise MixingError(f"mixing 'identity' takes no mixing_args, got {sorted(kwargs)}")
        return LinearMixing(np.eye(d))
    p = 2 * d if p is None else int(p)
    if kind == "linear":
        unknown = sorted(set(kwargs) - {"condition_number"})
        if unknown:
            raise MixingError(f"mixing 'linear' takes only condition_number, got {unknown}")
        return LinearMixing.random(d, p, rng, kwargs.get("condition_number", 5.0))
    if kind == "mlp":
        try:
            return MLPMixing.random(d, p, rng, **kwargs)
        except TypeError as err:
            raise MixingError(f"bad mixing_args for 'mlp': {err}") from None
    raise MixingError(
        f"mixing must be 'identity', 'linear', 'mlp' (or 'image' for quad), got {kind!r}"
    )


def _vector_model(
    graph: DAG,
    rng: np.random.Generator,
    *,
    block_size: int,
    mechanism: str,
    noise: str,
    intervention: str,
    mixing: str,
    p: int | None,
    nuisance_dim: int,
    held_out,
    mixing_args: Mapping | None,
) -> ConceptModel:
    # preset arguments often come from JSON: refuse a wrong type by name, never a TypeError
    if not is_number(block_size) and not (
        isinstance(block_size, list | tuple) and all(map(is_number, block_size))
    ):
        raise ModelError(
            f"block_size must be a positive integer or a list of them, got {block_size!r}"
        )
    nuisance_dim = check_number(nuisance_dim, "nuisance_dim", minimum=0, error=ModelError)
    if p is not None:
        p = check_number(p, "p (observation size)", error=ModelError)
    if mixing_args is not None and not isinstance(mixing_args, Mapping):
        raise ModelError(f"mixing_args must be an object (a dict) or null, got {mixing_args!r}")
    sem = random_sem(graph, rng, block_sizes=block_size, mechanism=mechanism, noise_family=noise)
    contexts = single_target_contexts(sem, rng, kind=intervention)
    d = sem.K + nuisance_dim
    T = np.eye(d) if mixing == "identity" else random_readout(sem.K, d, rng)
    f = make_mixing(mixing, d, rng, p=p, **dict(mixing_args or {}))
    held = composed(contexts, held_out) if held_out else ()
    return ConceptModel(sem, f, T, nuisance_dim, 1.0, contexts, held)


def chain(
    rng: np.random.Generator,
    m: int = 5,
    *,
    block_size: int = 1,
    mechanism: str = "linear",
    noise: str = "gaussian",
    intervention: str = "hard",
    mixing: str = "linear",
    p: int | None = None,
    nuisance_dim: int = 0,
    held_out: str | Sequence | None = "pairs",
    mixing_args: Mapping | None = None,
) -> ConceptModel:
    """The chain ``c0 -> c1 -> ... -> c{m-1}`` with random weights, one context per concept."""
    return _vector_model(
        chain_graph(m), rng, block_size=block_size, mechanism=mechanism, noise=noise,
        intervention=intervention, mixing=mixing, p=p, nuisance_dim=nuisance_dim,
        held_out=held_out, mixing_args=mixing_args,
    )  # fmt: skip


def random_graph_model(
    rng: np.random.Generator,
    m: int = 5,
    *,
    expected_degree: float | None = None,
    block_size: int = 1,
    mechanism: str = "linear",
    noise: str = "gaussian",
    intervention: str = "hard",
    mixing: str = "linear",
    p: int | None = None,
    nuisance_dim: int = 0,
    held_out: str | Sequence | None = "pairs",
    mixing_args: Mapping | None = None,
) -> ConceptModel:
    """An Erdos-Renyi DAG with ``expected_degree`` (default ``min(2, m - 1)``: 2.0 from ``m = 3``
    on), random weights, one context per concept."""
    if expected_degree is None:  # a malformed m is refused by erdos_renyi, by name
        expected_degree = min(2.0, m - 1) if is_number(m) else 2.0
    return _vector_model(
        erdos_renyi(m, expected_degree, rng), rng, block_size=block_size, mechanism=mechanism,
        noise=noise, intervention=intervention, mixing=mixing, p=p, nuisance_dim=nuisance_dim,
        held_out=held_out, mixing_args=mixing_args,
    )  # fmt: skip


QUAD_NAMES = ("quad1", "quad2", "quad3", "quad4", "size", "color", "shape", "orientation")
#: (parent, child, weight) of the dependent quad scene.
QUAD_EDGES = (
    ("quad2", "quad1", -1.23),
    ("quad3", "quad2", 1.56),
    ("quad4", "quad1", 1.34),
    ("quad4", "quad3", -0.72),
    ("color", "quad1", -0.95),
    ("color", "size", 1.67),
    ("shape", "quad2", 0.58),
    ("shape", "color", -1.34),
    ("orientation", "quad1", 1.12),
    ("orientation", "size", -0.81),
    ("orientation", "shape", 1.45),
)
QUAD_NOISE_VAR = (1.3855, 1.1643, 1.0050, 1.9565, 1.2748, 1.42, 1.31, 1.18)
QUAD_INTERVENTION_MEAN = (1.1692, 1.4750, -1.6060, -1.9658, 1.0117, -0.85, 1.23, -0.67)
QUAD_INTERVENTION_VAR = (1.9488, 1.3589, 1.5734, 1.1022, 1.3051, 1.52, 1.41, 1.26)
QUAD_TARGETS = ("quad1", "quad2", "quad3", "quad4", "size", "orientation")
#: targets of ``quad(identifiable=True)``: every concept (A6). ``color`` and ``shape`` take the
#: transcribed lists' entries for them (means -0.85 and 1.23, variances 1.52 and 1.41), which the
#: source design never uses.
QUAD_TARGETS_IDENTIFIABLE = QUAD_NAMES


def quad(
    rng: np.random.Generator | None = None,
    *,
    image_size: int = 32,
    nuisance: bool = False,
    held_out: str | Sequence | None = "pairs",
    standardize: bool = True,
    mixing: str = "image",
    dependent: bool = True,
    identifiable: bool = False,
) -> ConceptModel:
    """The dependent quad scene: eight scalar concepts rendered as an RGB image.

    The SEM is over ``quad1..quad4, size, color, shape, orientation`` with the edges, weights, noise
    variances (means 0) and hard-intervention means and variances of the *dependent quad* dataset of
    Markham, Hirsch, Chang, Solus and Aragam, "Intervening to learn and compose causally
    disentangled representations" (CLeaR 2026, arXiv:2507.04754), as transcribed in this project's
    simulators issue: see :data:`QUAD_EDGES`, :data:`QUAD_NOISE_VAR`,
    :data:`QUAD_INTERVENTION_MEAN`, :data:`QUAD_INTERVENTION_VAR`. Six concepts are intervened
    on (:data:`QUAD_TARGETS`); ``color`` and ``shape`` never are.

    With ``standardize`` (default) every context is expressed in units of the *exact* observational
    population mean and standard deviation: the SEM and the interventions are transformed exactly
    (:meth:`SEM.standardized_by`), no sample statistic is used.

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        Unused (the preset is fixed); accepted for a uniform preset signature.
    image_size : int
        Image width and height (32 or 64 are the usual sizes).
    nuisance : bool
        Add two nuisance dimensions (object position), invariant across contexts.
    held_out : "pairs", "all", list of target lists, or None
        Composed contexts for out-of-distribution tests.
    mixing : "image" (default) or "identity"
        ``identity`` observes the concepts themselves (useful for fast tests of the SEM).
    dependent : bool
        ``False`` gives the *independent* quad scene, the paper's other table: the same concepts,
        noise laws, interventions and renderer with every edge removed (the eight concepts are
        independent in every context). The noise and intervention parameters are the dependent
        scene's (the source's independent parameters are not transcribed here).
    identifiable : bool
        ``True`` gives the variant where the hypotheses of Theorem S hold, so that images have a
        rung where recovery up to the class is expected: every concept has a hard intervention
        context (:data:`QUAD_TARGETS_IDENTIFIABLE`; the six of the source design keep their
        transcribed laws, ``color`` and ``shape`` take the lists' entries for them, and A7
        holds for both: each has a parent in the dependent scene, and in the independent one
        the intervention law differs from the observational noise law), and the image mixing
        is the injective renderer :class:`~conceptid.simulations.mixing.InjectiveQuadMixing` (A3 by
        construction). The SEM, ``dependent``, ``nuisance`` and ``standardize`` are as above.

    Raises
    ------
    MixingError
        For an ``image_size`` that is not an integer >= 8, or an unknown ``mixing``.
    ModelError
        For a flag (``nuisance``, ``standardize``, ``dependent``, ``identifiable``) that is not
        a boolean.
    """
    image_size = check_number(image_size, "image_size", error=MixingError)
    for flag, value in (("nuisance", nuisance), ("standardize", standardize),
                        ("dependent", dependent), ("identifiable", identifiable)):  # fmt: skip
        if not isinstance(value, bool | np.bool_):
            raise ModelError(f"{flag} must be true or false, got {value!r}")
    edges = QUAD_EDGES if dependent else ()
    graph = DAG.from_edges([(p, c) for p, c, _ in edges], nodes=QUAD_NAMES)
    idx = {n: i for i, n in enumerate(QUAD_NAMES)}
    B = np.zeros((8, 8))
    for p, c, w in edges:
        B[idx[c], idx[p]] = w
    sem = SEM(graph, B, np.zeros(8), tuple(np.array([[v]]) for v in QUAD_NOISE_VAR))
    mean_i = np.array(QUAD_INTERVENTION_MEAN)
    var_i = np.array(QUAD_INTERVENTION_VAR)
    if standardize:
        loc = sem.population_mean()
        scale = np.sqrt(np.diag(sem.population_covariance()))
        sem = sem.standardized_by(loc, scale)
        mean_i = (mean_i - loc) / scale
        var_i = var_i / scale**2
    targets = QUAD_TARGETS_IDENTIFIABLE if identifiable else QUAD_TARGETS
    contexts = (Context.observational(),) + tuple(
        Context((Hard(t, mean_i[idx[t]], var_i[idx[t]]),)) for t in targets
    )
    held = composed(contexts, held_out) if held_out else ()
    nd = 2 if nuisance else 0
    if mixing == "image":
        image = InjectiveQuadMixing if identifiable else ImageMixing
        f: Mixing = image(int(image_size), bool(nuisance))
    elif mixing == "identity":
        f = LinearMixing(np.eye(8 + nd))
    else:
        raise MixingError(f"quad takes mixing 'image' or 'identity', got {mixing!r}")
    return ConceptModel(sem, f, None, nd, 1.0, contexts, held)


PRESETS: dict[str, Callable[..., ConceptModel]] = {
    "chain": chain,
    "random": random_graph_model,
    "quad": quad,
}


def build_preset(name: str, rng: np.random.Generator, **kwargs) -> ConceptModel:
    """Build a preset by name with keyword arguments.

    Raises
    ------
    UsageError
        ``rng`` is not a :class:`numpy.random.Generator` (an int seed is not taken: pass
        ``np.random.default_rng(seed)``); None is taken by a preset that draws nothing
        (``quad``).
    ModelError
        An unknown name or an argument the preset does not take (and the preset's own
        refusals, each a ConceptIDError naming the argument).
    """
    if name not in PRESETS:
        raise ModelError(f"unknown preset {name!r}; presets are {sorted(PRESETS)}")
    import inspect

    params = inspect.signature(PRESETS[name]).parameters
    if not (rng is None and params["rng"].default is None):  # quad draws nothing: None is taken
        check_rng(rng)
    bad = [k for k in kwargs if k not in params or k == "rng"]
    if bad:
        allowed = [k for k in params if k != "rng"]
        raise ModelError(f"preset {name!r} does not take {bad}; it takes {allowed}")
    return PRESETS[name](rng, **kwargs)
