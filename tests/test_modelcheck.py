"""The noise check (conceptid.modelcheck): Bartlett's test against its chi-squared law, the
priors' exogenous noise against the noise that generated the concepts, and the check through a
run, with and without ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conceptid.cli import main
from conceptid.modelcheck import applies_to, bartlett, noise_check
from conceptid.models.context_prior import ContextFlowPrior
from conceptid.models.data import TensorData
from conceptid.models.estimators import SEMPrior
from conceptid.simulations.errors import UsageError


def test_bartlett_is_calibrated_under_independence():
    """Independent Gaussian columns: the rejection rate at 5% over 600 draws is 5% within four
    binomial standard deviations (0.9%), and the p-values spread over (0, 1)."""
    rng = np.random.default_rng(0)
    p = np.array([bartlett(rng.standard_normal((200, 5)))["p_value"] for _ in range(600)])
    sd = np.sqrt(0.05 * 0.95 / 600)
    assert abs((p < 0.05).mean() - 0.05) < 4 * sd
    assert abs(np.median(p) - 0.5) < 0.08


def test_bartlett_matches_its_formula_and_ignores_scale():
    """The statistic is -(n - 1 - (2d + 5)/6) log det R, computed here from the correlation
    matrix; rescaling and shifting a column changes nothing; correlation 0.3 between two of
    four columns is found at n = 500."""
    rng = np.random.default_rng(1)
    e = rng.standard_normal((500, 4))
    e[:, 1] += 0.3 / np.sqrt(1 - 0.3**2) * e[:, 0]
    n, d = e.shape
    R = np.corrcoef(e.T)
    expected = -(n - 1 - (2 * d + 5) / 6) * np.log(np.linalg.det(R))
    got = bartlett(e)
    assert got["statistic"] == pytest.approx(expected, rel=1e-10)
    assert got["dof"] == 6 and got["p_value"] < 1e-8
    assert got["max_abs_corr"] == pytest.approx(abs(R[0, 1]), rel=1e-12)
    scaled = e * np.array([3.0, 0.1, 1.0, 7.0]) + 5.0
    assert bartlett(scaled)["statistic"] == pytest.approx(got["statistic"], rel=1e-8)


@pytest.mark.parametrize(
    "e, message",
    [
        (np.zeros((10, 1)), "d >= 2 columns"),
        (np.ones((4, 2)), "at least 5 rows"),
        (np.r_[np.random.default_rng(0).standard_normal((9, 2)), [[np.nan, 0]]], "NaN"),
        (np.c_[np.random.default_rng(0).standard_normal(10), np.ones(10)], "constant"),
        (np.repeat(np.random.default_rng(0).standard_normal((10, 1)), 2, 1), "singular"),
    ],
)
def test_bartlett_refuses_what_it_cannot_test(e, message):
    with pytest.raises(UsageError, match=message):
        bartlett(e)


def _targets(rng, b: int, m: int) -> torch.Tensor:
    return torch.from_numpy(rng.random((b, m)) < 0.4)


def test_the_sem_priors_exogenous_noise_is_the_noise_that_made_the_concepts():
    """c = (I - B_T)^{-1} (mu_T + sigma_T eps) under random target sets: exogenous(c) is eps."""
    rng = np.random.default_rng(2)
    K = 4
    prior = SEMPrior([1] * K).double()
    B = np.tril(rng.normal(size=(K, K)), -1)
    prior.set_linear_gaussian(B, rng.normal(size=K), rng.uniform(0.5, 2, K),
                              rng.normal(size=K), rng.uniform(0.5, 2, K))  # fmt: skip
    T = _targets(rng, 300, K)
    eps = torch.randn(300, K, dtype=torch.float64)
    t = T.double()
    W = prior.weights.detach()
    mu = prior.mu_obs + t * (prior.mu_int - prior.mu_obs)
    sd = torch.exp(0.5 * (prior.logvar_obs + t * (prior.logvar_int - prior.logvar_obs)))
    eye = torch.eye(K, dtype=torch.float64)
    with torch.no_grad():
        c = torch.stack([torch.linalg.solve(eye - W * (1 - t[i])[:, None], mu[i] + sd[i] * eps[i])
                         for i in range(300)])  # fmt: skip
    got = prior.exogenous(c, T).detach()
    torch.testing.assert_close(got, eps, rtol=1e-9, atol=1e-9)


def test_the_context_priors_exogenous_noise_inverts_its_forward_map():
    torch.manual_seed(3)
    prior = ContextFlowPrior([1, 2, 1]).double()
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    T = _targets(np.random.default_rng(3), 200, 3)
    eps = torch.randn(200, 4, dtype=torch.float64)
    c, _ = prior(eps, T)
    torch.testing.assert_close(prior.exogenous(c, T), eps, rtol=1e-7, atol=1e-7)


def test_an_entangled_concept_shows_in_the_context_that_intervenes_on_it():
    """c1, c2 independent; learned u1 = c1 + c2 / 2, u2 = c2. The SEM over u with the edge
    u2 -> u1 (weight 1/2) reproduces the observational and do(c2) laws exactly, so its noise is
    independent there; do(c1) cuts u1 from u2 while u1 still carries c2, and the noise is
    correlated (0.5 / sqrt(0.75) = 0.58). The aligned model (u = c, no edge) passes in every
    context."""
    rng = np.random.default_rng(7)
    n = 2000
    context = np.repeat([0, 1, 2], n)  # observational, do(c1), do(c2)
    c = rng.standard_normal((3 * n, 2))
    c[context == 1, 0] = 2 + np.sqrt(0.5) * rng.standard_normal(n)
    c[context == 2, 1] = -1 + 1.5 * rng.standard_normal(n)
    targets = np.zeros((3 * n, 2), dtype=bool)
    targets[context == 1, 0] = targets[context == 2, 1] = True
    u = c.copy()
    u[:, 0] += 0.5 * c[:, 1]

    def prior(edge: float, var_int: list) -> SEMPrior:
        p = SEMPrior([1, 1]).double()
        p.set_linear_gaussian([[0, edge], [0, 0]], [0, 0], [1, 1], [2, -1], var_int)
        return p

    split = TensorData(torch.from_numpy(u), torch.from_numpy(targets),
                       torch.from_numpy(context), torch.zeros(3 * n, 2))  # fmt: skip
    names = ["obs", "do(c1)", "do(c2)"]
    # u1's law under do(c1): mean 2, variance 0.5 + 0.25
    entangled = noise_check(_Prior(prior(0.5, [0.75, 2.25])), split, [0, 1, 2], names)
    ctx = entangled["contexts"]
    assert ctx["do(c1)"]["p_value"] < 1e-12 and ctx["do(c1)"]["max_abs_corr"] > 0.5
    assert ctx["obs"]["p_value"] > 1e-4 and ctx["do(c2)"]["p_value"] > 1e-4
    aligned = TensorData(torch.from_numpy(c), split.targets, split.context, split.concepts)
    ok = noise_check(_Prior(prior(0.0, [0.5, 2.25])), aligned, [0, 1, 2], names)
    assert all(v["p_value"] > 1e-4 for v in ok["contexts"].values())
    assert ok["statistic_per_dof"] < 5 < entangled["statistic_per_dof"]


class _Prior:
    """A model whose learned concepts are its input and whose prior is given."""

    def __init__(self, prior) -> None:
        self.prior = prior

    def exogenous(self, x, targets, generator=None):
        return self.prior.exogenous(x, targets).detach()


class _Fixed:
    """A model whose exogenous noise is given: its rows, in order (its ``exogenous`` takes no
    generator, as a model's need not)."""

    def __init__(self, eps: np.ndarray) -> None:
        self.eps = torch.from_numpy(eps)

    def exogenous(self, x, targets):
        return self.eps[x[:, 0].long()]


def _split(context: np.ndarray, m: int = 2) -> TensorData:
    n = len(context)
    return TensorData(torch.arange(n, dtype=torch.float32)[:, None], torch.zeros(n, m, dtype=bool),
                      torch.from_numpy(context), torch.zeros(n, m))  # fmt: skip


def test_noise_check_flags_the_context_whose_noise_is_correlated():
    rng = np.random.default_rng(4)
    context = np.repeat([0, 1, 2], 400)
    eps = rng.standard_normal((1200, 3))
    eps[context == 2, 2] = eps[context == 2, 0] + 0.5 * rng.standard_normal(400)
    out = noise_check(_Fixed(eps), _split(context), [0, 1, 2], ["obs", "a", "b"])
    assert set(out["contexts"]) == {"obs", "a", "b"}
    assert out["contexts"]["b"]["p_value"] < 1e-12 and out["min_p"] < 1e-12
    assert out["contexts"]["obs"]["p_value"] > 1e-3 and out["contexts"]["a"]["p_value"] > 1e-3
    assert out["bonferroni_p"] == pytest.approx(min(1.0, 3 * out["min_p"]))
    stats = [v["statistic"] for v in out["contexts"].values()]
    assert out["statistic_per_dof"] == pytest.approx(sum(stats) / 9)  # three pairs a context
    # only the contexts asked for, at most max_rows rows each
    out = noise_check(_Fixed(eps), _split(context), [0, 1], ["obs", "a", "b"], max_rows=50)
    assert set(out["contexts"]) == {"obs", "a"} and out["contexts"]["a"]["n"] == 50


def test_noise_check_says_what_it_skipped_and_when_there_is_nothing_to_test():
    rng = np.random.default_rng(5)
    context = np.repeat([0, 1], 100)
    eps = rng.standard_normal((200, 2))
    eps[context == 1, 1] = 0.0  # a collapsed coordinate in one context
    out = noise_check(_Fixed(eps), _split(context), [0, 1], ["obs", "a"])
    assert set(out["contexts"]) == {"obs"} and "constant" in out["skipped"]["a"]
    assert noise_check(object(), _split(context), [0, 1], ["obs", "a"]) is None
    assert noise_check(_Fixed(eps[:, :1]), _split(context), [0, 1], ["obs", "a"]) is None


def test_too_few_rows_are_skipped_with_the_reason():
    rng = np.random.default_rng(8)
    context = np.array([0] * 50 + [1] * 4)
    out = noise_check(_Fixed(rng.standard_normal((54, 2))), _split(context), [0, 1], ["o", "a"])
    assert set(out["contexts"]) == {"o"} and "at least 5 rows" in out["skipped"]["a"]
    assert out["bonferroni_p"] == pytest.approx(out["min_p"])  # one context tested


@pytest.mark.parametrize("prior", ["sem", "context-module"])
def test_the_estimators_noise_is_its_priors_on_its_concepts_then_its_nuisance(prior):
    """LatentFlowMLE (untrained: the identity of the check does not need a fit): the noise is
    the prior inverted on the learned concepts under the targets, then the nuisance; the
    labels-ignored ablation is not checked."""
    from conceptid.models.mle import LatentFlowMLE

    torch.manual_seed(9)
    model = LatentFlowMLE((6,), [1, 1, 1], nuisance_dim=1, prior=prior).eval()
    x = torch.randn(40, 6)
    t = _targets(np.random.default_rng(9), 40, 3)
    with torch.no_grad():
        u = model.encode(x)
        expected = torch.cat([model.prior.exogenous(u[:, :3], t), u[:, 3:]], 1)
    torch.testing.assert_close(model.exogenous(x, t), expected)
    assert model.exogenous(x, t).shape == (40, 4)
    context = torch.from_numpy(np.repeat([0, 1], 20))
    split = TensorData(x, t, context, torch.zeros(40, 3))
    assert applies_to(model) and noise_check(model, split, [0, 1], ["a", "b"]) is not None
    ablation = LatentFlowMLE((6,), [1, 1, 1], nuisance_dim=1, prior=prior, use_labels=False)
    assert not applies_to(ablation)
    assert noise_check(ablation, split, [0, 1], ["a", "b"]) is None


class _Posterior(torch.nn.Module):
    """A VAE encoder whose posterior is given: mean ``W x``, log variance ``log_var``."""

    def __init__(self, W: torch.Tensor, log_var: float) -> None:
        super().__init__()
        self.W, self.log_var = W, log_var

    def forward(self, x):
        mean = x @ self.W.T
        return mean, torch.full_like(mean, self.log_var)


def _sem_rows(rng, K: int, n: int):
    """Concepts of a linear Gaussian SEM under random target sets, with their noise."""
    prior = SEMPrior([1] * K)
    prior.set_linear_gaussian(
        np.tril(rng.normal(size=(K, K)), -1),
        rng.normal(size=K),
        rng.uniform(0.5, 2, K),
        rng.normal(size=K),
        rng.uniform(0.5, 2, K),
    )
    T = _targets(rng, n, K)
    c = prior.sample(T, torch.Generator().manual_seed(int(rng.integers(1 << 30))))
    return prior, T, c


def test_the_theorem_matched_vaes_noise_is_its_sem_inverted_on_a_posterior_draw():
    """A posterior concentrated on the true concepts (log variance -40) and the true SEM as the
    prior: the noise is the SEM's noise, and the nuisance draw is the posterior's. A broad
    posterior draws: the same generator state gives the same noise, and the check is
    reproducible."""
    from conceptid.models.estimators import TheoremMatchedVAE

    rng = np.random.default_rng(11)
    K = 3
    prior, T, c = _sem_rows(rng, K, 200)
    vae = TheoremMatchedVAE((K,), [1] * K, nuisance_dim=1)
    vae.prior.load_state_dict(prior.state_dict())
    W = torch.cat([torch.eye(K), torch.zeros(1, K)])  # nuisance mean 0
    vae.encoder = _Posterior(W, -40.0)
    got = vae.exogenous(c, T, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(got[:, :K], prior.exogenous(c, T).detach(), rtol=1e-5, atol=1e-5)
    assert got[:, K].abs().max() < 1e-6  # the nuisance: a draw of N(0, e^-40)
    vae.encoder = _Posterior(W, 0.0)
    a = vae.exogenous(c, T, generator=torch.Generator().manual_seed(5))
    b = vae.exogenous(c, T, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, vae.exogenous(c, T, generator=torch.Generator().manual_seed(6)))
    split = TensorData(c, T, torch.from_numpy(np.repeat([0, 1], 100)), c)
    first = noise_check(vae, split, [0, 1], ["a", "b"])
    assert first == noise_check(vae, split, [0, 1], ["a", "b"])
    assert first["contexts"]["a"]["dof"] == 6  # three concepts and the nuisance


def test_the_context_module_vaes_noise_is_a_posterior_draw_and_it_is_not_checked():
    """The module's N(0, I) prior holds in every context: the noise is the encoder's draw, the
    same for every target set. The check skips the model (its context-free encoder cannot
    pass), and its labels-ignored ablation."""
    from conceptid.models.estimators import ContextModuleVAE

    torch.manual_seed(3)
    vae = ContextModuleVAE((5,), [1, 1, 1], nuisance_dim=1)
    x = torch.randn(30, 5)
    t = _targets(np.random.default_rng(3), 30, 3)
    mean, log_var = vae.encoder(x)
    draw = vae.exogenous(x, t, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    expected = mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=g)
    torch.testing.assert_close(draw, expected.detach())
    again = vae.exogenous(x, ~t, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(draw, again)
    assert draw.shape == (30, 4) and not applies_to(vae)
    split = TensorData(x, t, torch.from_numpy(np.repeat([0, 1], 15)), torch.zeros(30, 3))
    assert noise_check(vae, split, [0, 1], ["a", "b"]) is None
    assert not applies_to(ContextModuleVAE((5,), [1, 1, 1], nuisance_dim=1, use_labels=False))


def test_no_context_free_read_out_of_a_chain_has_independent_noise_in_both_contexts():
    """Why the context-module VAE is skipped: on c0 -> c1 (weight 0.8), the noise pair (c0,
    a c1 + b c0) of any context-free read-out with a != 0 is correlated in the observational
    context or under do(c1); the read-out of the true observational noise (a, b) = (1, -0.8)
    passes the first and fails the second."""
    rng = np.random.default_rng(5)
    n = 4000
    c0 = rng.standard_normal((2, n))
    c1_obs = 0.8 * c0[0] + rng.standard_normal(n)
    c1_do = rng.standard_normal(n) + 1.0
    for a, b in [(1.0, -0.8), (1.0, 0.0), (0.5, -0.2)]:
        obs = bartlett(np.c_[c0[0], a * c1_obs + b * c0[0]])["p_value"]
        do = bartlett(np.c_[c0[1], a * c1_do + b * c0[1]])["p_value"]
        assert min(obs, do) < 1e-6, (a, b, obs, do)
    assert bartlett(np.c_[c0[0], c1_obs - 0.8 * c0[0]])["p_value"] > 0.01


def test_the_noise_check_tells_an_aligned_vae_from_an_entangled_one():
    """The theorem-matched VAE with the true SEM as prior and a sharp posterior: on the true
    concepts its noise is independent in every context; with the second concept read as a mix
    of the first two, the noise of the context intervening on it is correlated."""
    from conceptid.models.estimators import TheoremMatchedVAE

    K, n = 3, 1500
    prior = SEMPrior([1] * K)
    prior.set_linear_gaussian([[0, 0, 0], [0.8, 0, 0], [0, 0.8, 0]], [0, 0, 0], [1, 1, 1],
                              [1, 1, 1], [1, 1, 1])  # fmt: skip
    T = torch.zeros(3 * n, K, dtype=torch.bool)
    T[n : 2 * n, 1] = True  # contexts: observational, do(c1), do(c2)
    T[2 * n :, 2] = True
    c = prior.sample(T, torch.Generator().manual_seed(1))
    split = TensorData(c, T, torch.from_numpy(np.repeat([0, 1, 2], n)), c)
    vae = TheoremMatchedVAE((K,), [1] * K)
    vae.prior.load_state_dict(prior.state_dict())
    vae.encoder = _Posterior(torch.eye(K), -40.0)
    aligned = noise_check(vae, split, [0, 1, 2], ["obs", "do(c1)", "do(c2)"])
    assert aligned["bonferroni_p"] > 0.01
    mix = torch.eye(K)
    mix[1, 0] = 0.5  # u1 = c1 + c0 / 2
    vae.encoder = _Posterior(mix, -40.0)
    entangled = noise_check(vae, split, [0, 1, 2], ["obs", "do(c1)", "do(c2)"])
    assert entangled["contexts"]["do(c1)"]["p_value"] < 1e-6
    assert entangled["contexts"]["do(c1)"]["max_abs_corr"] > 0.3


def test_a_run_checks_the_noise_of_every_model_with_a_prior(tmp_path):
    """Through `conceptid run` on imported data (no ground truth): the two-step fit gets a noise
    check per training context and per held-out composition, in metrics.json and the report;
    the pooled VAE, which has no per-context prior, gets none, nor does the paper's
    context-module VAE, which cannot pass by construction."""
    from conceptid.simulations import Dataset

    rng = np.random.default_rng(6)
    targets = [[], ["a"], ["b"], ["a", "b"]] * 60
    x = rng.standard_normal((240, 4))
    ds = Dataset.from_arrays(x, targets, ["a", "b"], held_out=[["a", "b"]], seed=0)
    data = ds.save(tmp_path / "data")
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--data",
                str(data),
                "--epochs",
                "2",
                "--methods",
                "pooled,latent-flow,context-module",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    methods = json.loads((out / "metrics.json").read_text())["methods"]
    for name in ("pooled", "context-module"):
        assert methods[name]["noise_check"] == {"training": None, "held_out": None}
    for name in ("latent-flow",):
        nc = methods[name]["noise_check"]
        assert set(nc["training"]["contexts"]) == set(ds.context_names[:3])
        assert set(nc["held_out"]["contexts"]) == {ds.context_names[3]}
        for part in nc.values():
            for v in part["contexts"].values():
                # two concepts and two nuisance coordinates (x has four): six pairs
                assert 0 <= v["p_value"] <= 1 and v["dof"] == 6 and v["n"] > 0
    assert "Noise check (needs no ground truth" in (out / "report.md").read_text()


class _ExactPosterior(torch.nn.Module):
    """The exact posterior of ``x = W c + sigma e`` under the prior ``c ~ N(0, Sigma)``:
    ``N(P W^T x / sigma^2, P)``, ``P = diag(pdiag)`` (``W`` is built so that ``P`` is diagonal,
    the form a VAE's encoder has)."""

    def __init__(self, M: np.ndarray, pdiag: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("Mt", torch.as_tensor(M.T))
        self.register_buffer("log_var", torch.as_tensor(np.log(pdiag)))

    def forward(self, x):
        return x @ self.Mt, self.log_var.expand(x.shape[0], -1)


def test_posterior_draws_pass_where_posterior_means_fail():
    # Why the theorem-matched VAE's noise comes from a posterior draw, not its mean. Chain
    # c0 -> c1 (weight b), observed as x = W c + sigma e, with W chosen so that the exact
    # posterior covariance P = (Sigma^-1 + W^T W / sigma^2)^-1 is a diagonal D^-1. Drawn from the
    # exact posterior, the concepts follow the prior exactly, so the noise (I - B) c / s is
    # N(0, I); the posterior means are shrunk: their noise has covariance
    # I - S^-1/2 (I - B) P (I - B)^T S^-1/2, whose off-diagonal -b p0 / sqrt(s0 s1) is not 0.
    from conceptid.models.estimators import TheoremMatchedVAE

    b, s, sigma, n = 0.8, np.array([1.0, 0.5]), 0.5, 4000
    I_B = np.array([[1.0, 0.0], [-b, 1.0]])
    prec = I_B.T @ np.diag(1 / s) @ I_B  # Sigma^-1
    d = np.linalg.eigvalsh(prec).max() + 1.0
    G = d * np.eye(2) - prec  # = W^T W / sigma^2, positive definite
    W = sigma * np.linalg.cholesky(G).T
    P = np.eye(2) / d
    M = P @ W.T / sigma**2
    rng = np.random.default_rng(0)
    c = rng.multivariate_normal(np.zeros(2), np.linalg.inv(prec), n)
    x = c @ W.T + sigma * rng.standard_normal((n, 2))
    model = TheoremMatchedVAE((2,), [1, 1]).double()
    model.prior.set_linear_gaussian([[0, 0], [b, 0]], [0, 0], s, [0, 0], [1, 1])
    model.encoder = _ExactPosterior(M, np.diag(P)).double()
    zeros = torch.zeros(n, 2, dtype=torch.float64)
    split = TensorData(torch.as_tensor(x), zeros, torch.zeros(n, dtype=torch.long),
                       torch.as_tensor(c))  # fmt: skip
    drawn = noise_check(model, split, [0], ["obs"])
    model.exogenous = lambda x, targets: model.prior.exogenous(model.encoder(x)[0], targets)
    means = noise_check(model, split, [0], ["obs"])
    # the correlation the means' noise must show, in closed form
    cov = np.eye(2) - np.diag(s**-0.5) @ I_B @ P @ I_B.T @ np.diag(s**-0.5)
    rho = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert abs(rho) > 0.4
    assert drawn["min_p"] > 0.01 and drawn["statistic_per_dof"] < 3
    assert means["min_p"] < 1e-12
    # Bartlett's statistic for two coordinates is -(n - 1 - 9/6) log(1 - r^2), r the sample
    # correlation: within four standard errors of rho, (1 - rho^2) / sqrt(n)
    se = (1 - rho**2) / np.sqrt(n)
    lo, hi = (-(n - 2.5) * np.log(1 - r**2) for r in (abs(rho) - 4 * se, abs(rho) + 4 * se))
    assert lo < means["statistic_per_dof"] < hi
