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


# -- SEM.log_density: exact for every mechanism and noise family ----------------------------


def _scalar_chain_sem(mechanism, family):
    from conceptid.simulations import DAG, SEM

    g = DAG.from_edges([("a", "b")])
    B = np.array([[0.0, 0.0], [0.8, 0.0]])
    params = ()
    if mechanism == "mlp":
        params = [{"W1": np.array([[1.0], [-0.5]]), "b1": np.array([0.1, 0.2]),
                   "W2": np.array([[0.7, 1.3]])} for _ in range(2)]  # fmt: skip
    return SEM(g, B, np.array([0.3, -0.2]), (np.array([[1.5]]), np.array([[0.6]])),
               noise_family=family, mechanism=mechanism, mlp_params=params)  # fmt: skip


@pytest.mark.parametrize("family", ["gaussian", "laplace", "uniform"])
@pytest.mark.parametrize("mechanism", ["linear", "tanh", "mlp"])
def test_log_density_integrates_to_one(mechanism, family):
    """Quadrature of exp(log p) over the plane is 1 for every mechanism and family (the
    change of variables of a triangular map, checked by integration, not by the same formula)."""
    from scipy.integrate import dblquad

    sem = _scalar_chain_sem(mechanism, family)
    # a = 0.3 + sqrt(1.5) z_a, b = 0.8 phi(a) - 0.2 + sqrt(0.6) z_b: integrate b first, around
    # its conditional mean, over the support (uniform: exactly its edges, so the integrand is
    # smooth inside) or +-w sd beyond which the tail is below 1e-12
    w = {"gaussian": 12.0, "laplace": 25.0, "uniform": 3.0**0.5}[family]

    def phi(a):
        return float(sem._phi(0, np.array([[a]]))[0, 0]) if mechanism != "linear" else a

    def dens(b, a):
        return float(np.exp(sem.log_density(np.array([[a, b]]))[0]))

    edge = 1 - 1e-12 if family == "uniform" else 1.0  # the support's edges, just inside
    total, _ = dblquad(dens, 0.3 - w * edge * 1.5**0.5, 0.3 + w * edge * 1.5**0.5,
                       lambda a: 0.8 * phi(a) - 0.2 - w * edge * 0.6**0.5,
                       lambda a: 0.8 * phi(a) - 0.2 + w * edge * 0.6**0.5,
                       epsabs=1e-8, epsrel=1e-8)  # fmt: skip
    assert total == pytest.approx(1.0, abs=1e-6)


def test_log_density_matches_scipy_for_a_linear_gaussian_block_sem():
    """A block SEM (blocks of 2 and 3, full noise covariances): scipy's Gaussian at the
    exact moments."""
    from conceptid.simulations import DAG, random_sem

    g = DAG.from_edges([("a", "b"), ("a", "c"), ("b", "c")])
    sem = random_sem(g, np.random.default_rng(0), block_sizes=[2, 3, 1])
    c = sem.sample(50, np.random.default_rng(1))
    m, S = sem.population_moments()
    np.testing.assert_allclose(sem.log_density(c), multivariate_normal(m, S).logpdf(c),
                               rtol=1e-10, atol=1e-10)  # fmt: skip


def test_true_nll_uses_the_noise_family():
    """Laplace noise, identity mixing (J = I): -log p(x) is the sum of the exogenous noises'
    Laplace densities (scipy), not the Gaussian at the same moments."""
    from scipy.stats import laplace

    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "mixing": "identity",
                                                      "noise": "laplace"},
                         n_train=5, n_val=200, n_test=5, seed=4)  # fmt: skip
    ds = generate(spec)
    rows = ds.rows("val", "training")
    names = [c["name"] for c in ds.card["contexts"]]
    ctx = {c.name: c for c in ds.model.all_contexts}
    want = np.empty(len(ds.context[rows]))
    for k in np.unique(ds.context[rows]):
        sel = ds.context[rows] == k
        sem = ds.model.sem.intervene(ctx[names[k]])
        c = np.asarray(ds.concepts[rows][sel], float)
        eps = c - c @ sem.weights.T - sem.noise_mean
        sd = np.sqrt([S[0, 0] for S in sem.noise_cov])
        fams = np.array(sem.noise_family)
        lp = np.where(fams == "laplace", laplace.logpdf(eps, scale=sd / np.sqrt(2)),
                      -0.5 * (eps / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi)))  # fmt: skip
        want[sel] = -lp.sum(1)
    np.testing.assert_allclose(true_nll(ds, "val"), want, rtol=1e-6, atol=1e-6)


def test_true_nll_covers_nonlinear_mechanisms():
    """A tanh-mechanism SEM has no Gaussian law; its true density is still exact."""
    spec = BenchmarkSpec(preset="chain", preset_args={"m": 3, "mixing": "identity",
                                                      "mechanism": "tanh"},
                         n_train=5, n_val=20, n_test=5, seed=4)  # fmt: skip
    ds = generate(spec)
    got = true_nll(ds, "val")
    assert got.shape == (len(ds.context[ds.rows("val", "training")]),)
    assert np.isfinite(got).all()


def test_log_density_refuses_a_malformed_array():
    from conceptid.simulations.sem import SEMError

    sem = _scalar_chain_sem("linear", "gaussian")
    with pytest.raises(SEMError, match=r"finite \(n, 2\) array"):
        sem.log_density(np.zeros((3, 5)))
    with pytest.raises(SEMError, match="finite"):
        sem.log_density(np.array([[np.nan, 0.0]]))
