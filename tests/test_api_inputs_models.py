"""Bad input to the torch layer found by the API review, refused before any work with one line
naming it: your own nets of the wrong shapes (a dry run at construction), metrics given
garbage, the context module given NaN or another dtype, training settings torch would reject
later, TensorData parts of other lengths, meta tensors, a seed for a generator, a float16
model, and sample counts beyond memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conceptid.models import (
    ContextModule,
    ContextModuleVAE,
    LatentFlowMLE,
    ManifoldMLE,
    PooledVAE,
    TheoremMatchedVAE,
    TrainConfig,
    fit,
    fit_restarts,
)
from conceptid.models.contract import check_generator, check_not_meta
from conceptid.models.data import TensorData
from conceptid.models.metrics import active_dims, bits_per_dim, mcc, sliced_wasserstein
from conceptid.models.nets import check_nets
from conceptid.simulations.errors import UsageError
from conceptid.simulations.resources import MemoryLimitError

P, BLOCKS, ND = 8, (1, 1, 1), 1
K, M, D = sum(BLOCKS), len(BLOCKS), sum(BLOCKS) + ND
MASKS = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=torch.bool)
CFG = dict(epochs=1, batch_size=16, progress=False)


def _data(n_per_context: int = 12) -> TensorData:
    g = torch.Generator().manual_seed(0)
    context = torch.arange(len(MASKS)).repeat_interleave(n_per_context)
    x = torch.randn(len(context), P, generator=g) + context[:, None].float()
    return TensorData(x, MASKS[context], context, torch.zeros(len(context), K))


def _flow(**kw) -> LatentFlowMLE:
    torch.manual_seed(0)
    return LatentFlowMLE((P,), BLOCKS, ND, ae_epochs=1, snap_every=0, hidden=8, flow_layers=2,
                         flow_hidden=8, **kw)  # fmt: skip


# -- your own encoder and decoder: a dry run at construction ---------------------------------


def test_latent_flow_mle_dry_runs_your_own_nets_naming_the_shapes():
    own = dict(ae_epochs=0)
    with pytest.raises(UsageError, match=r"^the decoder must return \(batch, 8\) from "
                       r"\(batch, 4\); got \(2, 10\)$"):  # fmt: skip
        LatentFlowMLE((P,), BLOCKS, ND, encoder=nn.Linear(P, D), decoder=nn.Linear(D, 10), **own)
    with pytest.raises(UsageError, match=r"^the decoder must return \(batch, 8\) from "
                       r"\(batch, 4\); on a \(2, 4\) input it raised RuntimeError"):  # fmt: skip
        LatentFlowMLE((P,), BLOCKS, ND, encoder=nn.Linear(P, D), decoder=nn.Linear(3, P), **own)
    with pytest.raises(UsageError, match=r"^the encoder must return \(batch, 4\) = \(batch, K "
                       r"\+ nuisance_dim\) from \(batch, 8\).*got \(2, 3\)$"):  # fmt: skip
        LatentFlowMLE((P,), BLOCKS, ND, encoder=nn.Linear(P, 3), decoder=nn.Linear(D, P), **own)
    with pytest.raises(UsageError, match=r"^the encoder must .*on a \(2, 8\) input it raised"):
        LatentFlowMLE((P,), BLOCKS, ND, encoder=nn.Linear(7, D), decoder=nn.Linear(D, P), **own)
    # one net of your own is dry-run with the built-in other
    with pytest.raises(UsageError, match="^the decoder must return"):
        LatentFlowMLE((P,), BLOCKS, ND, ae_epochs=2, decoder=nn.Linear(3, P))
    with pytest.raises(UsageError, match="^the encoder must be a torch.nn.Module, got str"):
        ManifoldMLE((P,), BLOCKS, ND, encoder="net", decoder=nn.Linear(D, P))
    # nets of the right shapes pass, each run in its own dtype
    enc, dec = nn.Linear(P, D).double(), nn.Linear(D, P).double()
    LatentFlowMLE((P,), BLOCKS, ND, encoder=enc, decoder=dec, **own)


def test_the_dry_run_leaves_the_nets_mode_and_statistics_alone():
    enc = nn.Sequential(nn.Linear(P, D), nn.BatchNorm1d(D))
    before = enc[1].running_mean.clone()
    ManifoldMLE((P,), BLOCKS, ND, encoder=enc, decoder=nn.Linear(D, P))
    assert enc.training and torch.equal(enc[1].running_mean, before)


class _Pair(nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        self.lin, self.out = nn.Linear(P, 2 * out), out

    def forward(self, x):
        h = self.lin(x)
        return h[:, : self.out], h[:, self.out :]


def test_the_context_module_vae_dry_run_catches_a_decoder_of_the_wrong_input_width():
    wrong_width = r"^the decoder must return \(batch, 8\) from \(batch, 4\); on a \(2, 4\) input"
    with pytest.raises(UsageError, match=wrong_width + " it raised RuntimeError: mat1"):
        ContextModuleVAE((P,), BLOCKS, ND, encoder=_Pair(D), decoder=nn.Linear(5, P))
    with pytest.raises(UsageError, match=r"^the encoder must return \(mean, log_var\)"):
        ContextModuleVAE((P,), BLOCKS, ND, encoder=_Pair(D - 1), decoder=nn.Linear(D, P))
    ContextModuleVAE((P,), BLOCKS, ND, encoder=_Pair(D), decoder=nn.Linear(D, P))


def test_check_nets_is_the_one_dry_run():
    check_nets(_Pair(D), nn.Linear(D, P), (P,), D, pair=True)
    check_nets(nn.Linear(P, D), nn.Linear(D, P), (P,), D)
    with pytest.raises(UsageError, match=r"got \[\(2, 4\), \(2, 4\)\]"):  # tuple: first only
        check_nets(_Pair(D), nn.Linear(D, P), (P,), D + 1, D)


# -- metrics ----------------------------------------------------------------------------------


def test_sliced_wasserstein_refuses_bad_settings_and_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(60, 3))
    for n in (0, -1, 2.5, True):
        with pytest.raises(UsageError, match="^n_projections must be a positive integer"):
            sliced_wasserstein(a, b, n_projections=n)
    for seed in (-1, 1.7, True, "x"):
        with pytest.raises(UsageError, match="^seed must be a non-negative integer"):
            sliced_wasserstein(a, b, seed=seed)
    bad = [(a + 1j, "^a must be real, got complex"), (np.zeros((0, 3)), r"^a is empty \(0, 3\)"),
           (np.zeros((5, 0)), r"^a is empty \(5, 0\)"), (np.arange(5.0), "^a must be a 2-d array"),
           (np.array([[1, "a"]], dtype=object), "^a must be an array of real numbers"),
           (np.full((5, 3), np.nan), "^a holds 15 NaN or infinite")]  # fmt: skip
    for arr, message in bad:
        with pytest.raises(UsageError, match=message):
            sliced_wasserstein(arr, b)
    with pytest.raises(UsageError, match="^b must be real"):
        sliced_wasserstein(a, b + 1j)
    with pytest.raises(MemoryLimitError, match="^sliced_wasserstein with 1000000000 projections"):
        sliced_wasserstein(a, b, n_projections=10**9)
    # images (n, ...) are flattened as before; numpy integers are integers
    imgs = rng.normal(size=(20, 3, 2, 2))
    assert sliced_wasserstein(imgs, imgs, seed=np.int64(3)) == pytest.approx(0.0, abs=1e-12)


def test_mcc_active_dims_and_bits_per_dim_refuse_garbage():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 2))
    with pytest.raises(UsageError, match="^learned must be real, got complex"):
        mcc(a + 1j, a)
    with pytest.raises(UsageError, match=r"^learned is empty \(5, 0\)"):
        mcc(np.zeros((5, 0)), np.zeros((5, 0)))
    with pytest.raises(UsageError, match=r"^learned is empty \(0, 2\)"):
        mcc(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(UsageError, match="^learned holds 40 NaN or infinite"):
        mcc(np.full((20, 2), np.nan), a)
    with pytest.raises(UsageError, match="^true holds 1 NaN or infinite"):
        mcc(a, np.where(np.arange(40).reshape(20, 2) == 3, np.inf, a))
    with pytest.raises(UsageError, match="^posterior_means holds 10 NaN or infinite"):
        active_dims(np.full((5, 2), np.nan))
    with pytest.raises(UsageError, match="^posterior_means holds 1 NaN"):
        active_dims(np.array([[0.0, np.inf], [1.0, 2.0]]))
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(UsageError, match="^neg_elbo_nats must be one finite number"):
            bits_per_dim(value, 3)
    assert bits_per_dim(np.float32(np.log(2.0) * 3), 3) == pytest.approx(1.0)


# -- the context module -----------------------------------------------------------------------


def test_the_context_module_refuses_non_finite_inputs_and_other_dtypes():
    torch.manual_seed(0)
    module = ContextModule([1, 1, 2], 16, 2)
    tg = torch.zeros(8, 3, dtype=torch.bool)
    eps, nuis = torch.randn(8, 4), torch.randn(8, 2)
    with pytest.raises(UsageError, match=r"^eps holds 32 NaN or infinite value\(s\) of 32$"):
        module(torch.full((8, 4), float("nan")), nuis, tg)
    with pytest.raises(UsageError, match="^nuisance holds 1 NaN or infinite"):
        module(eps, torch.where(torch.arange(16).view(8, 2) == 0, torch.inf, nuis), tg)
    with pytest.raises(UsageError, match="^eps holds 4 NaN"):
        module.concepts(torch.full((1, 4), float("inf")), tg[:1])
    for dtype in (torch.float64, torch.float16):
        with pytest.raises(UsageError, match=rf"^eps is {dtype}, the model torch.float32: "
                           rf"convert it with eps.to\(torch.float32\)$"):  # fmt: skip
            module(eps.to(dtype), nuis, tg)
    with pytest.raises(UsageError, match="^eps must be floating point, got torch.int64"):
        module(torch.ones(8, 4, dtype=torch.long), nuis, tg)
    with pytest.raises(UsageError, match="^nuisance is torch.float64"):
        module(eps, nuis.double(), tg)
    with pytest.raises(UsageError, match="^eps is on the meta device"):
        module(eps.to("meta"), nuis.to("meta"), tg)
    rep, c = module(eps, nuis, tg)
    assert rep.shape == (8, 18) and torch.isfinite(c).all()
    # a float64 module reads float64 inputs
    rep64, _ = module.double()(eps.double(), nuis.double(), tg)
    assert rep64.dtype == torch.float64


def test_the_context_module_vae_does_not_check_its_own_nets_output():
    """A diverging fit still ends with TrainingDivergedError, not a UsageError on the module's
    input: the VAE's own encoder feeds the module unchecked."""
    torch.manual_seed(0)
    model = ContextModuleVAE((P,), BLOCKS, ND, hidden=8)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.fill_(float("nan"))
    batch = _data().batch(torch.arange(6))
    loss, _ = model.loss(batch)
    assert torch.isnan(loss)
    assert torch.isnan(model.concepts(batch.x)).all()


# -- training settings, data and models -------------------------------------------------------


def test_train_config_refuses_settings_torch_would_reject_later():
    for wd in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(UsageError, match="^weight_decay must be a non-negative finite"):
            TrainConfig(**CFG, weight_decay=wd)
    for threads in (-1, 0, 2.5, True):
        with pytest.raises(UsageError, match=r"^threads \(None: torch's default\) must be a "
                           "positive integer"):  # fmt: skip
            TrainConfig(**CFG, threads=threads)
    with pytest.raises(UsageError, match="^checkpoint must be None or a path .* got int$"):
        TrainConfig(**CFG, checkpoint=5)
    cfg = TrainConfig(**CFG, weight_decay=0, threads=1, checkpoint=Path("c.pt"))
    assert cfg.weight_decay == 0 and cfg.threads == 1 and os.fspath(cfg.checkpoint) == "c.pt"


def test_fit_refuses_a_config_that_is_not_a_train_config():
    data = _data()
    with pytest.raises(UsageError, match=r"^cfg must be a TrainConfig, got dict: build one"):
        fit(PooledVAE((P,), D, hidden=8), data, data, {"epochs": 1})
    with pytest.raises(UsageError, match="^cfg must be a TrainConfig, got dict"):
        fit_restarts(lambda: PooledVAE((P,), D, hidden=8), data, data, {"epochs": 1})


@pytest.mark.parametrize("part", ["context", "concepts", "features"])
def test_fit_refuses_tensor_data_whose_parts_have_other_row_counts(part):
    data = _data()
    model = PooledVAE((P,), D, hidden=8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    short = {"context": data.context[:10], "concepts": data.concepts[:5],
             "features": torch.zeros(3, 2)}[part]  # fmt: skip
    kw = {k: getattr(data, k) for k in ("x", "targets", "context", "concepts")} | {part: short}
    with pytest.raises(UsageError, match=rf"^the training data's {part} must be a tensor of "
                       rf"one row per row of x \(36\), got {len(short)} rows$"):  # fmt: skip
        fit(model, TensorData(**kw), data, TrainConfig(**CFG))
    with pytest.raises(UsageError, match=rf"^the validation data's {part} must be a tensor"):
        fit(model, data, TensorData(**kw), TrainConfig(**CFG))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_fit_refuses_a_float16_model_naming_the_dtype():
    data = _data()
    half = TensorData(data.x.half(), data.targets, data.context, data.concepts)
    with pytest.raises(UsageError, match=r"^PooledVAE has float16 parameters \(first "
                       r".*train in float32"):  # fmt: skip
        fit(PooledVAE((P,), D, hidden=8).half(), half, half, TrainConfig(**CFG))


def test_meta_tensors_are_refused_naming_the_device():
    data = _data()
    model = _flow()
    meta = "is on the meta device, which holds shapes but no values"
    with pytest.raises(UsageError, match=f"^x {meta}"):
        model.concepts(data.x.to("meta"))
    for mask in (torch.zeros(4, M, device="meta"), torch.zeros(4, M, dtype=torch.bool,
                                                               device="meta")):  # fmt: skip
        with pytest.raises(UsageError, match=f"^targets {meta}"):
            model.generate(mask)
    with pytest.raises(UsageError, match=f"^generate_from_data: targets {meta}"):
        model.generate_from_data(data.x, data.targets, torch.tensor([1, 0, 0], device="meta"), 4)
    with pytest.raises(UsageError, match=f"^the training data's x {meta}"):
        fit(_flow(), TensorData(data.x.to("meta"), data.targets, data.context, data.concepts),
            data, TrainConfig(**CFG))  # fmt: skip
    with pytest.raises(UsageError, match=f"^the training data's context {meta}"):
        fit(_flow(), TensorData(data.x, data.targets, data.context.to("meta"), data.concepts),
            data, TrainConfig(**CFG))  # fmt: skip
    with pytest.raises(UsageError, match=f"^LatentFlowMLE's .* {meta}: build the model"):
        fit(_flow().to("meta"), data, data, TrainConfig(**CFG))
    with pytest.raises(UsageError, match=f"^w {meta}: elsewhere$"):
        check_not_meta(torch.zeros(1, device="meta"), "w", "elsewhere")


def test_generate_refuses_a_generator_that_is_not_a_torch_generator():
    data = _data()
    message = r"^generator must be a torch.Generator \(or None\), got int"
    models = [_flow(), PooledVAE((P,), D, hidden=8), TheoremMatchedVAE((P,), BLOCKS, ND, hidden=8),
              ContextModuleVAE((P,), BLOCKS, ND, hidden=8)]  # fmt: skip
    for model in models:
        with pytest.raises(UsageError, match=message):
            model.generate(torch.tensor([1, 0, 0]), 2, generator=0)
        g = torch.Generator().manual_seed(0)
        assert model.generate(torch.tensor([1, 0, 0]), 2, generator=g).shape == (2, P)
    with pytest.raises(UsageError, match=message):
        models[0].generate_from_data(data.x, data.targets, torch.tensor([1, 0, 0]), 4,
                                     generator=0)  # fmt: skip
    check_generator(None)


def test_generate_from_data_refuses_samples_beyond_memory_as_generate_does():
    data = _data()
    model = _flow()
    with pytest.raises(MemoryLimitError, match="^generating 100000000000 samples needs about"):
        model.generate(torch.tensor([1, 1, 0]), 10**11)
    with pytest.raises(MemoryLimitError, match="^generating 100000000000 samples needs about"):
        model.generate_from_data(data.x, data.targets, torch.tensor([1, 1, 0]), 10**11)
