"""Bad input to the torch layer is refused before any work, with one UsageError line naming it:
target masks that are not 0/1 or have other rows, observations of another shape, type or dtype
or with NaN, empty or non-finite splits, unusable devices, a latent wider than the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conceptid.models import (
    IVAE,
    ContextModule,
    ContextModuleVAE,
    LatentFlowMLE,
    LogRatioClassifier,
    ManifoldMLE,
    PooledVAE,
    TheoremMatchedVAE,
    TrainConfig,
    fit,
)
from conceptid.models.context_prior import ContextFlowPrior
from conceptid.models.contract import check_observations, check_targets
from conceptid.models.data import TensorData
from conceptid.models.estimators import SEMPrior
from conceptid.models.trainer import check_device
from conceptid.simulations.errors import UsageError

P, BLOCKS, ND = 8, (1, 1, 1), 1
K, M = sum(BLOCKS), len(BLOCKS)
MASKS = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=torch.bool)
CFG = TrainConfig(epochs=2, batch_size=16, progress=False)

ESTIMATORS = {
    "theorem-matched": lambda: TheoremMatchedVAE((P,), BLOCKS, ND, hidden=8),
    "context-module": lambda: ContextModuleVAE((P,), BLOCKS, ND, hidden=8),
    "pooled": lambda: PooledVAE((P,), K + ND, hidden=8),
    "ivae": lambda: IVAE((P,), K + ND, len(MASKS), hidden=8),
    "log-ratio": lambda: LogRatioClassifier((P,), M, hidden=8),
    "manifold-mle": lambda: ManifoldMLE((P,), BLOCKS, ND, hidden=8, snap_every=0),
    "latent-flow": lambda: LatentFlowMLE(
        (P,), BLOCKS, ND, ae_epochs=1, snap_every=0, hidden=8, flow_layers=2, flow_hidden=8
    ),  # fmt: skip
    "context-flow": lambda: LatentFlowMLE(
        (P,),
        BLOCKS,
        ND,
        ae_epochs=1,
        hidden=8,
        prior="context-module",
        flow_layers=2,
        flow_hidden=8,
    ),  # fmt: skip
}


def _data(n_per_context: int = 12, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    context = torch.arange(len(MASKS)).repeat_interleave(n_per_context)
    x = torch.randn(len(context), P, generator=g) + context[:, None].float()
    return TensorData(x, MASKS[context], context, torch.zeros(len(context), K))


def _weights(model: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


# -- 1. target masks -------------------------------------------------------------------------


def test_a_mask_that_is_not_01_or_has_other_rows_is_refused_by_the_context_module_vae():
    torch.manual_seed(0)
    model = ContextModuleVAE((P,), BLOCKS, ND)
    x = torch.randn(5, P)
    for bad in (torch.full((5, M), 0.5), -torch.ones(5, M), torch.full((5, M), 2)):
        with pytest.raises(UsageError, match=r"^targets must be a 0/1 mask"):
            model.concepts(x, bad)
    with pytest.raises(UsageError, match=r"one row per sample \(5 here\), got \(3, 3\)$"):
        model.concepts(x, torch.ones(3, M))
    with pytest.raises(UsageError, match=r"\(batch, 3\) 0/1 mask.*got \(5, 2\)"):
        model.concepts(x, torch.ones(5, 2))
    with pytest.raises(UsageError, match="a torch.Tensor.*got ndarray"):
        model.concepts(x, np.ones((5, M)))
    # a 0/1 mask of any dtype is read as the boolean mask it is
    ones = model.concepts(x, torch.ones(5, M, dtype=torch.bool))
    assert torch.equal(model.concepts(x, torch.ones(5, M)), ones)
    assert torch.equal(model.concepts(x, torch.ones(5, M, dtype=torch.long)), ones)


def test_the_context_module_refuses_a_mask_that_is_not_01_and_rows_that_differ():
    module = ContextModule(BLOCKS, out_dim=4, nuisance_dim=2)
    eps, n = torch.randn(5, K), torch.randn(5, 2)
    with pytest.raises(UsageError, match="targets must be a 0/1 mask"):
        module(eps, n, torch.full((5, M), 0.5))
    with pytest.raises(UsageError, match="targets must be a 0/1 mask"):
        module.concepts(eps, -torch.ones(5, M))
    with pytest.raises(UsageError, match=r"one row per sample \(5 here\)"):
        module(eps, n, torch.zeros(4, M, dtype=torch.bool))
    with pytest.raises(UsageError, match=r"^nuisance must be a tensor \(5, 2\), one row per row "
                                         r"of eps, got \(3, 2\)$"):  # fmt: skip
        module(eps, torch.randn(3, 2), torch.zeros(5, M, dtype=torch.bool))
    with pytest.raises(UsageError, match=r"^eps must be a tensor \(batch, 3\), got ndarray$"):
        module(eps.numpy(), n, torch.zeros(5, M, dtype=torch.bool))


def test_the_priors_refuse_a_mask_that_is_not_01():
    c = torch.randn(4, K)
    for prior in (SEMPrior(BLOCKS), ContextFlowPrior(BLOCKS)):
        with pytest.raises(UsageError, match="targets must be a 0/1 mask"):
            prior.nll(c, torch.full((4, M), 0.5))
        with pytest.raises(UsageError, match=r"one row per sample \(4 here\)"):
            prior.exogenous(c, torch.zeros(2, M, dtype=torch.bool))
    model = TheoremMatchedVAE((P,), BLOCKS, ND, hidden=8)
    with pytest.raises(UsageError, match="targets must be a 0/1 mask"):
        model.exogenous(torch.randn(4, P), torch.full((4, M), 0.5))


def test_fit_refuses_training_or_validation_targets_that_are_not_01():
    data = _data()
    half = TensorData(data.x, data.targets.float() * 0.5, data.context, data.concepts)
    model = ContextModuleVAE((P,), BLOCKS, ND, hidden=8)
    before = _weights(model)
    with pytest.raises(UsageError, match="^the training data's targets must be a 0/1 mask"):
        fit(model, half, data, CFG)
    with pytest.raises(UsageError, match="^the validation data's targets must be a 0/1 mask"):
        fit(model, data, half, CFG)
    short = TensorData(data.x, data.targets[:-1], data.context, data.concepts)
    with pytest.raises(UsageError, match=r"training data's targets must be a \(batch, 3\)"):
        fit(model, short, data, CFG)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_check_targets_is_the_one_mask_check():
    assert check_targets(torch.tensor([[0.0, 1.0]]), 2, 1).dtype == torch.bool
    with pytest.raises(UsageError, match=r"^mask must be a \(batch, m\) 0/1 mask"):
        check_targets(torch.zeros(3), name="mask")
    with pytest.raises(UsageError, match="0/1 mask"):
        check_targets(torch.tensor([[float("nan"), 1.0]]), 2)


# -- 2. empty splits -------------------------------------------------------------------------


def test_fit_refuses_an_empty_split_before_training():
    data = _data()
    none = torch.arange(0)
    empty = TensorData(data.x[none], data.targets[none], data.context[none], data.concepts[none])
    model = PooledVAE((P,), K + ND, hidden=8)
    before = _weights(model)
    with pytest.raises(UsageError, match=r"^the validation data is empty \(0 rows\)"):
        fit(model, data, empty, CFG)
    with pytest.raises(UsageError, match=r"^the training data is empty \(0 rows\)"):
        fit(model, empty, data, CFG)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(UsageError, match="^the training data must be a TensorData, got tuple"):
        fit(model, (data.x, data.targets), data, CFG)


# -- 3. observations -------------------------------------------------------------------------


BAD_X = [
    (lambda: torch.randn(5, P - 1), r"^x must be a tensor \(N, 8\), got \(5, 7\)$"),
    (lambda: torch.randn(P), r"^x must be a tensor \(N, 8\), got \(8,\)$"),
    (lambda: torch.randn(5, P, 1), r"^x must be a tensor \(N, 8\), got \(5, 8, 1\)$"),
    (lambda: torch.randn(5, P).numpy(), r"^x must be a tensor \(N, 8\), got ndarray$"),
    (lambda: [[0.0] * P] * 5, r"^x must be a tensor \(N, 8\), got list$"),
    (lambda: torch.ones(5, P, dtype=torch.long), r"^x must be floating point, got torch.int64$"),
    (lambda: torch.randn(5, P, dtype=torch.float64),
     r"^x is torch.float64, the model torch.float32: convert it with x.to\(torch.float32\)$"),
    (lambda: torch.full((5, P), float("nan")), r"^x holds 40 NaN or infinite value\(s\) of 40$"),
    (lambda: torch.ones(5, P).index_fill_(1, torch.tensor([2]), float("inf")),
     r"^x holds 5 NaN or infinite value\(s\) of 40$"),
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_concepts_refuses_observations_it_cannot_read(name):
    torch.manual_seed(0)
    model = ESTIMATORS[name]()
    assert model.obs_shape == (P,)
    assert model.concepts(torch.randn(5, P)).shape[0] == 5
    for make, message in BAD_X:
        with pytest.raises(UsageError, match=message):
            model.concepts(make())


def test_every_entry_point_of_the_manifold_estimators_checks_x():
    torch.manual_seed(0)
    t = torch.zeros(5, M, dtype=torch.bool)
    bad = torch.randn(5, P, dtype=torch.float64)
    for model in (ESTIMATORS["latent-flow"](), ESTIMATORS["manifold-mle"]()):
        calls = [model.latent, model.encode, model.reconstruct,
                 lambda x, m=model: m.nll(x, t),
                 lambda x, m=model: m.exogenous(x, t)]  # fmt: skip
        for call in calls:
            assert call(torch.randn(5, P)).shape[0] == 5
            with pytest.raises(UsageError, match="^x is torch.float64, the model torch.float32"):
                call(bad)
        with pytest.raises(UsageError, match=r"one row per sample \(5 here\)"):
            model.nll(torch.randn(5, P), t[:3])
    model = ESTIMATORS["context-module"]()
    with pytest.raises(UsageError, match=r"^x must be a tensor \(N, 8\)"):
        model.exogenous(torch.randn(5, 7), t)


def test_a_float64_model_reads_float64_observations():
    model = ManifoldMLE((P,), BLOCKS, ND, hidden=8).double()
    assert model.concepts(torch.randn(5, P, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(UsageError, match="^x is torch.float32, the model torch.float64"):
        model.concepts(torch.randn(5, P))


def test_check_observations_without_a_shape_takes_any_batch():
    x = torch.randn(4, 2, 3)
    assert check_observations(x) is x
    with pytest.raises(UsageError, match=r"^data must be a tensor \(N, \.\.\.\), got \(4,\)$"):
        check_observations(torch.randn(4), name="data")


# -- 4. non-finite training data -------------------------------------------------------------


@pytest.mark.parametrize("name", ["pooled", "context-flow", "latent-flow", "log-ratio"])
def test_fit_refuses_non_finite_data_naming_the_split(name):
    data = _data()
    nan = data.x.clone()
    nan[3, 2] = float("nan")
    bad = TensorData(nan, data.targets, data.context, data.concepts)
    model = ESTIMATORS[name]()
    before = _weights(model)
    with pytest.raises(UsageError, match=r"^the training data's x holds 1 NaN or infinite"):
        fit(model, bad, data, CFG)
    inf = data.x.clone()
    inf[0, 0] = float("-inf")
    with pytest.raises(UsageError, match=r"^the validation data's x holds 1 NaN or infinite"):
        fit(model, data, TensorData(inf, data.targets, data.context, data.concepts), CFG)
    wide = TensorData(torch.randn(len(data), P + 1), data.targets, data.context, data.concepts)
    with pytest.raises(UsageError, match=r"^the training data's x must be a tensor \(N, 8\)"):
        fit(model, wide, data, CFG)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# -- 5. devices ------------------------------------------------------------------------------


def test_train_config_refuses_a_device_this_torch_cannot_use():
    assert TrainConfig(device="cpu").device == "cpu"
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match=r"^device 'nonsense' is not a device; use cpu, cuda"):
        TrainConfig(device="nonsense")
    with pytest.raises(UsageError, match=r"^device meta: only cpu, cuda, cuda:N and mps"):
        TrainConfig(device="meta")
    with pytest.raises(UsageError, match="^device cuda:99: "):
        TrainConfig(device="cuda:99")  # no machine has a hundred GPUs visible
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match=r"^device cuda:7: .*cannot use CUDA.*use device cpu"):
            TrainConfig(device="cuda:7")
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(UsageError, match="^device mps: MPS .* is not available here"):
            TrainConfig(device="mps")
    # the command line's wording, from the same check
    with pytest.raises(UsageError, match=r"^--device 'tpu' is not a device"):
        check_device("tpu", "--device")


# -- 6. the latent of the manifold estimators ------------------------------------------------


def test_a_latent_wider_than_the_observations_is_refused_at_construction():
    for cls in (LatentFlowMLE, ManifoldMLE):
        with pytest.raises(UsageError, match=r"= 5 dimensions, more than the 3 of an observation"):
            cls((3,), (2, 2), 1)
        assert cls((5,), (2, 2), 1, hidden=8).D == 5  # as many as the observations: fine


# -- 7. what the seed covers -----------------------------------------------------------------


def test_the_seed_covers_the_fit_and_manual_seed_the_initial_weights():
    data = _data()

    def trained(seed_before: bool) -> dict:
        if seed_before:
            torch.manual_seed(123)
        model = PooledVAE((P,), K + ND, hidden=8)
        fit(model, data, data, TrainConfig(epochs=2, batch_size=16, progress=False, seed=0))
        return model.state_dict()

    a, b = trained(True), trained(True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical: as docs/context-module.md says
    torch.manual_seed(1)  # whatever the global generator holds at construction...
    c = trained(False)
    torch.manual_seed(2)
    d = trained(False)
    assert not all(torch.equal(c[k], d[k]) for k in c)  # ...decides the fit, not cfg.seed
