"""The true density of a simulated dataset's observations, on their manifold.

For a model ``x = f(e)``, ``e = embed(c, n)``, with the concepts ``c`` drawn from the context's
SEM (any mechanism and noise family: :meth:`~conceptid.simulations.sem.SEM.log_density`, exact)
and the nuisance ``n ~ N(0, s^2 I)``, the density of ``x`` with respect to the volume of the
image of ``f o embed`` is

    -log p_k(x) = -log p_k(c) - log N(n; 0, s^2 I) + 1/2 log det(J^T J),

``J`` the Jacobian of ``(c, n) -> x``. A fitted model's negative log-likelihood on the same rows
minus this is >= 0 up to sampling error for any density on the data manifold (the NLL gap); far
below 0 means the fit exploits its objective.
"""

from __future__ import annotations

import numpy as np

from .benchmark import Dataset
from .errors import UsageError

__all__ = ["true_nll"]


def true_nll(
    ds: Dataset,
    split: str,
    *,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    contexts: str = "training",
    step: float = 1e-5,
) -> np.ndarray:
    """``-log p_k(x)`` (nats) for each row of ``split`` among the ``contexts`` (``"training"``,
    ``"held_out"`` or ``"all"``), in dataset order, under the dataset's true model, for ``x``
    standardised as ``(x - mean) / std`` (the identity when both are None: the change of scale
    enters through the Jacobian). The Jacobian is taken by central differences of step ``step``
    in float64.

    Raises
    ------
    UsageError
        The dataset has no ground-truth model (imported data), or its observations are images.
    """
    if not ds.has_ground_truth:
        raise UsageError("the true density needs a dataset with a ground-truth model")
    mod = ds.model
    if len(mod.mixing.output_shape) != 1:
        raise UsageError("the true density is computed for vector observations only")
    rows = ds.rows(split, contexts)
    C = np.asarray(ds.concepts[rows], float)
    N = np.asarray(ds.nuisance[rows], float)
    ctx = ds.context[rows]
    p = mod.mixing.output_shape[0]
    mu = np.zeros(p) if mean is None else np.asarray(mean, float)
    sd = np.ones(p) if std is None else np.asarray(std, float)
    names = [c["name"] for c in ds.card["contexts"]]
    by_name = {c.name: c for c in mod.all_contexts}
    out = np.zeros(len(C))
    for k in np.unique(ctx):
        sem = mod.sem.intervene(by_name[names[k]])
        out[ctx == k] = -sem.log_density(C[ctx == k])
    if N.shape[1]:
        var = mod.nuisance_scale**2
        out += 0.5 * ((N**2).sum(1) / var + N.shape[1] * np.log(2 * np.pi * var))

    K = C.shape[1]

    def f(z):
        return (mod.mixing(mod.embed(z[:, :K], z[:, K:])) - mu) / sd

    Z = np.hstack([C, N])
    eye = np.eye(Z.shape[1])
    J = np.stack([(f(Z + step * e) - f(Z - step * e)) / (2 * step) for e in eye], 2)
    return out + 0.5 * np.linalg.slogdet(np.einsum("bpi,bpj->bij", J, J))[1]
