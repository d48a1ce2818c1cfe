"""The true density on the data manifold against scipy's Gaussian, for a linear mixing."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from conceptid.simulations import BenchmarkSpec, generate
from conceptid.simulations.density import true_nll
from conceptid.simulations.errors import UsageError


@pytest.mark.parametrize("nuisance", [0, 2])
def test_linear_mixing_matches_the_gaussian_on_the_subspace(nuisance):
    """x = M (c, n) is Gaussian on the column space of M: in an orthonormal basis U of it,
    y = U^T x ~ N(U^T M m_k, U^T M S_k M^T U), and the density on the manifold is that of y."""
    args = {"m": 3, "p": 7, "mixing": "linear", "nuisance_dim": nuisance}
    spec = BenchmarkSpec(preset="random", preset_args=args, n_train=50, n_val=40, n_test=10, seed=3)
    ds = generate(spec)
    mod = ds.model
    mean = np.linspace(-1, 1, 7)
    std = np.linspace(0.5, 2, 7)
    got = true_nll(ds, "val", mean=mean, std=std, contexts="all")
    rows = ds.mask("val")
    K, d = 3, 3 + nuisance

    # the affine map (c, n) -> standardised x, read off the mixing itself
    def f(z):
        return (mod.mixing(mod.embed(z[:, :K], z[:, K:])) - mean) / std

    b = f(np.zeros((1, d)))[0]
    M = np.stack([f(np.eye(d)[[i]])[0] - b for i in range(d)], 1)
    U = np.linalg.svd(M, full_matrices=False)[0]
    x = (np.asarray(ds.x[rows], float) - mean) / std
    names = [c["name"] for c in ds.card["contexts"]]
    ctx = {c.name: c for c in mod.all_contexts}
    want = np.empty(rows.sum())
    for k in np.unique(ds.context[rows]):
        m, S = mod.population_moments(ctx[names[k]])
        mz = np.concatenate([m, np.zeros(nuisance)])
        Sz = np.zeros((d, d))
        Sz[:K, :K] = S
        Sz[K:, K:] = mod.nuisance_scale**2 * np.eye(nuisance)
        sel = ds.context[rows] == k
        law = multivariate_normal(U.T @ (M @ mz + b), U.T @ M @ Sz @ M.T @ U)
        want[sel] = -law.logpdf(x[sel] @ U)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_an_unknown_context_set_is_refused():
    ds = generate(BenchmarkSpec(preset="chain", n_train=5, n_val=5, n_test=5))
    with pytest.raises(UsageError, match="contexts must be"):
        true_nll(ds, "val", contexts="some")
