"""Mask semantics of the context module, checked exactly on small modules; KL of the SEM prior."""

from __future__ import annotations

import math

import pytest
import torch

from conceptid.models.context_module import CausalLayer, ContextModule, InterventionLayer
from conceptid.models.estimators import SEMPrior, TheoremMatchedVAE, gaussian_kl

BLOCKS = (1, 2, 1)  # three concepts, the second a 2-d block; K = 4


@pytest.fixture(autouse=True)
def _float64():
    """Exact comparisons in double precision, restored afterwards for the other test modules."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return module


def _targets(*rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_intervened_concept_receives_nothing_from_other_blocks():
    layer = _randomised(CausalLayer(BLOCKS).double())
    u = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    c = layer(u, _targets([False, True, False]))
    # the block of concept 1 (coordinates 1, 2) equals its own input, whatever the others are
    jac = torch.autograd.functional.jacobian(lambda v: layer(v, _targets([0, 1, 0])), u)[0, :, 0]
    assert torch.equal(c[0, 1:3], u[0, 1:3])
    assert torch.count_nonzero(jac[1:3][:, [0, 3]]) == 0
    # without the intervention it does receive from the others
    jac0 = torch.autograd.functional.jacobian(lambda v: layer(v, _targets([0, 0, 0])), u)[0, :, 0]
    assert torch.count_nonzero(jac0[1:3][:, [0, 3]]) > 0


def test_intervened_columns_use_interventional_weights():
    layer = _randomised(CausalLayer(BLOCKS).double())
    u = torch.randn(1, 4)
    c_obs = layer(u, _targets([0, 0, 0]))
    c_int = layer(u, _targets([1, 0, 0]))
    W_obs, W_int = layer.weight_obs * layer.off_block, layer.weight_int * layer.off_block
    # concept 2 (coordinate 3) gets u_0 through the interventional column when 0 is intervened
    expect_obs = u[0, 3] + W_obs[3] @ u[0]
    expect_int = u[0, 3] + W_int[3, 0] * u[0, 0] + W_obs[3, 1:] @ u[0, 1:]
    assert torch.allclose(c_obs[0, 3], expect_obs) and torch.allclose(c_int[0, 3], expect_int)


def test_non_intervened_mechanisms_are_shared_across_contexts():
    layer = _randomised(InterventionLayer(BLOCKS).double())
    eps = torch.randn(3, 4)
    out = layer(eps, _targets([0, 0, 0], [1, 0, 0], [0, 0, 1]))
    # concept 1 is never intervened: identical map in all three contexts
    shared = eps[:, 1:3] @ (layer.weight_obs * layer.block_mask)[1:3, 1:3].T + layer.bias_obs[1:3]
    assert torch.allclose(out[:, 1:3], shared)
    # blocks never mix in the intervention layer, in any context
    assert torch.count_nonzero(layer.block_mask[1:3][:, [0, 3]]) == 0


def test_mixed_batch_equals_per_context_passes():
    module = _randomised(ContextModule(BLOCKS, out_dim=5, nuisance_dim=2).double())
    eps, nuis = torch.randn(6, 4), torch.randn(6, 2)
    tg = _targets([0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1])
    rep, c = module(eps, nuis, tg)
    for i in range(6):
        r1, c1 = module(eps[i : i + 1], nuis[i : i + 1], tg[i : i + 1])
        assert torch.allclose(rep[i], r1[0]) and torch.allclose(c[i], c1[0])


def test_nuisance_channel_is_context_independent():
    module = _randomised(ContextModule(BLOCKS, out_dim=5, nuisance_dim=2).double())
    eps, nuis = torch.randn(1, 4).repeat(3, 1), torch.randn(1, 2).repeat(3, 1)
    rep, _ = module(eps, nuis, _targets([0, 0, 0], [1, 1, 0], [0, 1, 1]))
    assert torch.equal(rep[:, 5:], nuis)  # passed through unchanged in every context
    assert not torch.allclose(rep[0, :5], rep[1, :5])  # while the concepts do change


def test_bad_target_shapes_raise():
    module = ContextModule(BLOCKS, out_dim=5)
    with pytest.raises(ValueError, match="targets must be a"):
        module(torch.randn(2, 4), torch.randn(2, 0), torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="eps must be"):
        module(torch.randn(2, 3), torch.randn(2, 0), torch.zeros(2, 3, dtype=torch.bool))


def test_sem_prior_kl_matches_torch_and_monte_carlo():
    prior = _randomised(SEMPrior((1, 1, 1)).double(), seed=3)
    with torch.no_grad():
        prior.B.copy_(torch.tril(prior.B, -1) * 0.5)
    tg = _targets([0, 0, 0], [1, 0, 0], [0, 1, 1])
    pm, prec, logdet = prior.moments(tg)
    mean, log_var = torch.randn(3, 3), 0.3 * torch.randn(3, 3)
    kl = gaussian_kl(mean, log_var, pm, prec, logdet)
    from torch.distributions import MultivariateNormal, kl_divergence

    q = MultivariateNormal(mean, torch.diag_embed(log_var.exp()))
    p = MultivariateNormal(pm, precision_matrix=prec)
    assert torch.allclose(kl, kl_divergence(q, p), atol=1e-10)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    se = (q.log_prob(z) - p.log_prob(z)).std(0) / 200_000**0.5
    assert torch.all((mc - kl).abs() < 5 * se)


def test_prior_of_an_intervened_concept_ignores_its_parents():
    prior = SEMPrior((1, 1)).double()
    with torch.no_grad():
        prior.B[1, 0] = 2.0
        prior.mu_int[1], prior.logvar_int[1] = 3.0, 0.5
    pm, prec, _ = prior.moments(_targets([0, 1]))
    cov = torch.linalg.inv(prec[0])
    assert torch.allclose(cov[0, 1], torch.tensor(0.0)) and torch.allclose(
        pm[0, 1], torch.tensor(3.0)
    )
    pm0, prec0, _ = prior.moments(_targets([0, 0]))
    assert torch.linalg.inv(prec0[0])[0, 1] > 1.0  # observational: c1 = 2 c0 + noise


def test_dag_penalty_is_zero_exactly_on_dags():
    prior = SEMPrior((1, 1, 1)).double()
    with torch.no_grad():
        prior.B.copy_(torch.tensor([[0, 0, 0], [1.0, 0, 0], [0.5, -2, 0]]))
    assert prior.dag_penalty().abs() < 1e-12
    with torch.no_grad():
        prior.B[0, 2] = 0.3  # closes a cycle 0 -> 2 -> 0
    assert prior.dag_penalty() > 1e-3
    model = TheoremMatchedVAE((4,), (1, 1, 1))
    with torch.no_grad():
        model.prior.B.copy_(torch.tensor([[0, 0, 0.05], [1.0, 0, 0], [0.5, -2, 0]]))
    A = model.graph(threshold=0.1)
    assert A.tolist() == [[False, True, True], [False, False, True], [False, False, False]]


def test_sem_prior_forward_inverts_exogenous_and_its_logdet_is_the_density():
    """``forward`` is the inverse of ``exogenous`` under any targets (blocks of size 1 and 2),
    and ``-log p_T(c) = |eps|^2 / 2 + K/2 log 2 pi + log |det dc/deps|``: the change of
    variables agrees with ``nll``, the Gaussian density of ``moments``. ``B`` is cyclic, so
    that ``log |det(I - B_T)|`` is not zero and its term is checked too."""
    prior = _randomised(SEMPrior((1, 2, 1)).double(), seed=5)
    with torch.no_grad():
        prior.B.mul_(0.4)
    tg = _targets([0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1])
    eps = torch.randn(4, 4, dtype=torch.float64)
    c, logdet = prior(eps, tg)
    torch.testing.assert_close(prior.exogenous(c, tg), eps, rtol=1e-12, atol=1e-12)
    want = 0.5 * (eps**2).sum(1) + 2 * math.log(2 * math.pi) + logdet
    torch.testing.assert_close(prior.nll(c, tg), want, rtol=1e-10, atol=1e-10)
    K = prior.weights.shape[0]
    I_B = torch.eye(K, dtype=torch.float64) - prior.weights * ~tg[:, prior.concept_of, None]
    assert torch.linalg.slogdet(I_B)[1][:2].abs().min() > 1e-3  # not zero where B acts
