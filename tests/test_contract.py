"""The estimator contract: every estimator the package exports meets it, and its capability
attributes say what it does (generation, interventions, labels, context-dependent concepts)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import conceptid.models as models
from conceptid.models import (
    IVAE,
    CapabilityError,
    ContextModuleVAE,
    Estimator,
    EstimatorBase,
    LatentFlowMLE,
    LogRatioClassifier,
    ManifoldMLE,
    PooledVAE,
    TheoremMatchedVAE,
    TrainConfig,
    fit,
)
from conceptid.models.contract import CAPABILITIES, HOOKS, REQUIRED, target_rows
from conceptid.models.data import TensorData
from conceptid.simulations.errors import ConceptIDError, UsageError

P, BLOCKS, ND = 6, (1, 1), 1  # 6 observed dimensions, two scalar concepts, one nuisance
M, K = len(BLOCKS), sum(BLOCKS)
#: contexts of the toy data: observational, do(0), do(1)
MASKS = torch.tensor([[False, False], [True, False], [False, True]])


def _flow(**kw) -> LatentFlowMLE:
    return LatentFlowMLE(
        (P,), BLOCKS, ND, hidden=8, ae_epochs=1, flow_layers=2, flow_hidden=8, **kw
    )


FACTORIES = {
    "theorem-matched": lambda: TheoremMatchedVAE((P,), BLOCKS, ND, hidden=8),
    "context-module": lambda: ContextModuleVAE((P,), BLOCKS, ND, hidden=8),
    "context-module-ablation": lambda: ContextModuleVAE(
        (P,), BLOCKS, ND, hidden=8, use_labels=False
    ),
    "context-module-fine-tune": lambda: ContextModuleVAE.from_base(
        PooledVAE((P,), K + ND, hidden=8), (P,), BLOCKS, ND, unfreeze_after=2, hidden=8
    ),
    "pooled": lambda: PooledVAE((P,), K + ND, hidden=8),
    "ivae": lambda: IVAE((P,), K + ND, len(MASKS), hidden=8),
    "log-ratio": lambda: LogRatioClassifier((P,), M, hidden=8),
    "manifold-mle": lambda: ManifoldMLE((P,), BLOCKS, ND, hidden=8, snap_every=0),
    "latent-flow": lambda: _flow(snap_every=0),
    "context-flow": lambda: _flow(snap_every=0, prior="context-module"),
    "latent-flow-ablation": lambda: _flow(use_labels=False),
}


def _data(n_per_context: int = 12, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    context = torch.arange(len(MASKS)).repeat_interleave(n_per_context)
    x = torch.randn(len(context), P, generator=g) + context[:, None].float()
    return TensorData(x, MASKS[context], context, torch.zeros(len(context), K))


def _randomised(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Every parameter moved off its symmetric start (at which, e.g., the interventional and
    observational laws coincide)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model


def _ready(name: str) -> torch.nn.Module:
    """A model set up on the toy data and in its final objective (past any warm-up stage)."""
    torch.manual_seed(0)
    model = FACTORIES[name]()
    data = _data()
    model.prepare(data)
    model.epoch_end(0, data)
    return _randomised(model).eval()


def test_every_exported_estimator_is_covered():
    exported = {obj for obj in (getattr(models, k) for k in models.__all__)
                if isinstance(obj, type) and issubclass(obj, EstimatorBase)
                and obj is not EstimatorBase}  # fmt: skip
    built = {type(f()) for f in FACTORIES.values()}
    assert exported == built == {IVAE, ContextModuleVAE, LatentFlowMLE, LogRatioClassifier,
                                 ManifoldMLE, PooledVAE, TheoremMatchedVAE}  # fmt: skip


def _params(fn) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", FACTORIES)
def test_meets_the_protocol_with_its_signatures(name):
    model = FACTORIES[name]()
    assert isinstance(model, Estimator)
    for member in (*REQUIRED, *HOOKS):
        want = _params(getattr(Estimator, member))[1:]  # without self
        got = _params(getattr(model, member))
        assert got[: len(want)] == want, (member, got)
        # anything further is optional
        assert all(d is not inspect.Parameter.empty for _, _, d in got[len(want) :]), member
    for cap in CAPABILITIES:
        assert isinstance(getattr(model, cap), bool), cap
    assert not model.can_intervene or model.can_generate


@pytest.mark.parametrize("name", FACTORIES)
def test_generate_does_what_the_capabilities_say(name):
    model = _ready(name)
    rows = MASKS[torch.tensor([0, 1, 2, 1])]

    def gen(targets, n=None, seed=3):
        return model.generate(targets, n, generator=torch.Generator().manual_seed(seed))

    if not model.can_generate:
        with pytest.raises(CapabilityError, match="can_generate"):
            gen(rows)
        assert issubclass(CapabilityError, ConceptIDError)
        return
    x = gen(rows)
    assert x.shape == (4, P) and torch.isfinite(x).all()
    # one target set for n samples is that set repeated, sample for sample
    assert torch.equal(gen(MASKS[1], 4), gen(MASKS[1].repeat(4, 1)))
    observational, intervened = gen(MASKS[[0] * 4]), gen(MASKS[[1] * 4])
    if model.can_intervene:
        assert not torch.allclose(observational, intervened)
    else:  # the targets are accepted and ignored: one (pooled) law
        assert torch.equal(observational, intervened)
        assert torch.equal(observational, gen(torch.ones(4, M, dtype=torch.bool)))


@pytest.mark.parametrize("name", FACTORIES)
def test_needs_labels_says_whether_the_loss_reads_them(name):
    model = _ready(name)
    data = _data()
    batch = data.batch(torch.arange(len(data)))
    unlabelled = data.batch(torch.arange(len(data)))
    unlabelled.targets = torch.zeros_like(batch.targets)
    unlabelled.context = torch.zeros_like(batch.context)
    loss = model.loss(batch, torch.Generator().manual_seed(4))[0]
    blind = model.loss(unlabelled, torch.Generator().manual_seed(4))[0]
    assert torch.isfinite(loss)
    assert (loss.item() != blind.item()) == model.needs_labels


@pytest.mark.parametrize("name", FACTORIES)
def test_concepts_without_targets(name):
    model = _ready(name)
    x = _data().x[:9]
    targets = MASKS[torch.tensor([0, 1, 2] * 3)]
    c = model.concepts(x)
    assert c.shape[0] == 9 and torch.isfinite(c).all()
    # None reads every sample as observational
    assert torch.equal(c, model.concepts(x, torch.zeros(9, M, dtype=torch.bool)))
    assert torch.equal(c, model.concepts(x, targets)) == (not model.concepts_need_targets)


def test_the_context_module_reads_samples_without_targets_as_observational():
    model = _ready("context-module")
    x = _data().x[:5]
    mean = model.encoder(x)[0][:, :K]
    obs = model.module.concepts(mean, torch.zeros(5, M, dtype=torch.bool))
    assert model.concepts_need_targets and torch.equal(model.concepts(x), obs)


def test_the_trainer_calls_the_hooks_and_refuses_a_model_without_them():
    calls = []

    class Minimal(EstimatorBase):
        """Only what has no default: a loss and concepts (defaults: every hook)."""

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(P, K)

        def loss(self, batch, generator=None):
            value = (self.lin(batch.x) ** 2).mean()
            return value, {"loss": value.item()}

        def concepts(self, x, targets=None):
            return self.lin(x)

    class Hooked(Minimal):
        def prepare(self, train):
            calls.append(("prepare", len(train)))

        def epoch_end(self, epoch, train):
            calls.append(("epoch_end", epoch))
            return epoch == 0  # a stage switch after the first epoch

        def stage_inputs(self, data):
            calls.append(("stage_inputs", len(data)))
            return data

        def hold_early_stop(self):
            calls.append(("hold",))
            return False

    data = _data()
    cfg = TrainConfig(epochs=2, batch_size=16, progress=False)
    base = Minimal()
    assert isinstance(base, Estimator) and not base.can_generate
    assert base.prepare(data) is None and base.epoch_end(0, data) is False
    assert base.hold_early_stop() is False and base.selection_score(data) is None
    assert base.stage_inputs(data) is data
    assert len(fit(Minimal(), data, data, cfg)["val_loss"]) == 2
    fit(Hooked(), data, data, cfg)
    assert calls[0] == ("prepare", len(data))
    assert [c for c in calls if c[0] == "epoch_end"] == [("epoch_end", 0), ("epoch_end", 1)]
    # the stage's inputs, training and validation, after prepare and after the changed epoch 0
    staged = [i for i, c in enumerate(calls) if c[0] == "stage_inputs"]
    assert len(staged) == 4 and staged[:2] == [1, 2]
    assert calls[staged[2] - 1] == ("epoch_end", 0)
    with pytest.raises(UsageError, match="not an Estimator: it lacks can_generate"):
        fit(torch.nn.Linear(P, K), data, data, cfg)
    with pytest.raises(UsageError, match="torch.nn.Module"):
        fit(object(), data, data, cfg)


def test_target_rows_refuses_what_is_not_a_mask():
    assert target_rows(MASKS[1], 3).shape == (3, M)
    assert target_rows(MASKS, 3) is MASKS
    not_01 = [((MASKS.float() * 0.5, None), "0/1"), ((MASKS.long() * 2, 3), "0/1")]
    for bad, match in [((MASKS[1], None), "needs n"), ((MASKS, 4), "disagrees"),
                       ((MASKS[None], None), "shape"), ((MASKS[1], 0), "positive"),
                       *not_01]:  # fmt: skip
        with pytest.raises(UsageError, match=match):
            target_rows(*bad)
    with pytest.raises(UsageError, match="name 3 concepts"):
        target_rows(MASKS, m=3)
    with pytest.raises(UsageError, match="name 2 concepts"):
        _ready("theorem-matched").generate(torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(UsageError, match="0/1 mask"):  # a generator reads no 0.5 as True
        _ready("theorem-matched").generate(torch.full((4, 2), 0.5))


def test_unfreeze_after_is_a_constructor_argument():
    assert ContextModuleVAE((P,), BLOCKS, ND, hidden=8).unfreeze_after is None
    assert FACTORIES["context-module-fine-tune"]().unfreeze_after == 2
    with pytest.raises(UsageError, match="unfreeze_after"):
        ContextModuleVAE((P,), BLOCKS, ND, hidden=8, unfreeze_after=0)
    # the schedule: frozen nets are unfrozen at the end of epoch unfreeze_after
    model = FACTORIES["context-module-fine-tune"]()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert [model.epoch_end(e, None) for e in range(3)] == [False, True, False]
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_the_log_ratio_classifier_takes_its_class_shares_from_prepare():
    model = LogRatioClassifier((P,), M, hidden=8)
    data = _data()
    keep = torch.cat([torch.arange(12), torch.arange(12, 18), torch.arange(24, 27)])
    model.prepare(data.batch(keep))  # 12 observational, 6 do(0), 3 do(1)
    assert np.allclose(model.log_share.numpy(), np.log([1.0, 0.5, 0.25]))
    with pytest.raises(UsageError, match="observational"):
        model.prepare(data.batch(torch.arange(12, 36)))


def test_ivae_generates_from_its_pooled_law():
    model = _ready("ivae")
    data = _data()
    assert torch.allclose(model.context_share, torch.full((3,), 1 / 3))
    only = data.batch(torch.arange(24, 36))  # context 2 alone
    model.prepare(only)
    assert torch.equal(model.context_share, torch.tensor([0.0, 0.0, 1.0]))
    g = torch.Generator().manual_seed(5)
    context = torch.multinomial(model.context_share, 4, replacement=True, generator=g)
    assert torch.equal(context, torch.full((4,), 2))
    want = model._generate_contexts(context, g)
    assert torch.equal(model.generate(MASKS[0], 4, generator=torch.Generator().manual_seed(5)),
                       want)  # fmt: skip
    with pytest.raises(UsageError, match="context index 2"):
        IVAE((P,), K + ND, 2, hidden=8).prepare(data)


def test_the_two_manifold_estimators_share_a_base_not_each_other():
    from conceptid.models.mle import ManifoldEstimator

    for a, b in [(LatentFlowMLE, ManifoldMLE), (ManifoldMLE, LatentFlowMLE)]:
        assert issubclass(a, ManifoldEstimator) and not issubclass(a, b)
    with pytest.raises(TypeError):
        ManifoldEstimator((P,), BLOCKS, ND)  # abstract: the subclasses say what differs


def test_the_pipeline_asks_before_generating():
    from conceptid import pipeline

    class Mute(EstimatorBase):
        def loss(self, batch, generator=None):  # pragma: no cover - never trained
            raise AssertionError

        def concepts(self, x, targets=None):  # pragma: no cover
            raise AssertionError

    ds = type("D", (), {"concept_names": ("a", "b"), "is_image": False})()
    trained = pipeline.Trained(method="mute", model=Mute(), settings={},
                               normaliser=pipeline.Normaliser(None, None))  # fmt: skip
    with pytest.raises(pipeline.PipelineError, match="mute .*cannot generate: "):
        pipeline.sample(trained, ds, [], 2)
    with pytest.raises(pipeline.PipelineError, match="cannot generate under interventions"):
        pipeline.sample(trained, ds, ["a"], 2)
