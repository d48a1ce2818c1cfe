"""The trainer: determinism, checkpoints and resume, bad checkpoints, early stopping."""

from __future__ import annotations

import pytest
import torch

from conceptid.models.data import from_dataset
from conceptid.models.estimators import (
    IVAE,
    ContextModuleVAE,
    LogRatioClassifier,
    PooledVAE,
    TheoremMatchedVAE,
)
from conceptid.models.trainer import CheckpointError, TrainConfig, fit
from conceptid.simulations import BenchmarkSpec, generate


@pytest.fixture(scope="module")
def data():
    ds = generate(BenchmarkSpec(preset="chain", preset_args={"m": 3, "nuisance_dim": 1},
                                n_train=100, n_val=40, n_test=40, seed=0))  # fmt: skip
    return from_dataset(ds, "train"), from_dataset(ds, "val"), ds


def _tm():
    torch.manual_seed(0)
    return TheoremMatchedVAE((8,), (1, 1, 1), nuisance_dim=1, hidden=16)


def _cfg(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 64, "progress": False, "seed": 1, **kw})


def test_training_is_deterministic_under_a_seed(data):
    tr, va, _ = data
    a, b = _tm(), _tm()
    ha, hb = fit(a, tr, va, _cfg()), fit(b, tr, va, _cfg())
    assert ha["val_loss"] == hb["val_loss"]
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = _tm()
    hc = fit(c, tr, va, _cfg(seed=2))
    assert hc["val_loss"] != ha["val_loss"]


def test_loss_decreases_for_every_estimator(data):
    tr, va, ds = data
    n_ctx = len(ds.card["contexts"])
    for model in (
        _tm(),
        ContextModuleVAE((8,), (1, 1, 1), 1, hidden=16),
        PooledVAE((8,), 4, hidden=16),
        PooledVAE((8,), 4, beta=4.0, hidden=16),
        ContextModuleVAE((8,), (1, 1, 1), 1, use_labels=False, hidden=16),
        IVAE((8,), 4, n_ctx, hidden=16),
        LogRatioClassifier((8,), 3, hidden=16),
    ):
        h = fit(model, tr, va, _cfg(epochs=15, lr=5e-3))
        assert h["val_loss"][h["best_epoch"]] < h["val_loss"][0], type(model).__name__


def test_log_ratio_logits_have_the_hard_intervention_form():
    model = LogRatioClassifier((8,), 2)
    with torch.no_grad():
        model.B[1, 0] = 2.0
        model.mu_int[1], model.log_w_int[1], model.const[1] = 1.0, 0.0, 0.3
    c = torch.tensor([[0.5, 2.0]])
    logit = model.logits(c)[0, 2]  # context do(c1) against observational
    expect = -0.5 * (2.0 - 1.0) ** 2 + 0.5 * (2.0 - 2.0 * 0.5) ** 2 + 0.3
    assert logit.item() == pytest.approx(expect)
    assert model.logits(c)[0, 0].item() == 0.0
    # with a DAG penalty, a 2-cycle costs, a DAG does not
    penalised = LogRatioClassifier((8,), 2, dag_weight=1.0)
    batch = type("B", (), {})()
    batch.x, batch.targets = (
        torch.randn(4, 8),
        torch.tensor([[0, 0], [1, 0], [0, 1], [0, 0]]).bool(),
    )
    batch.context = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        penalised.B.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    assert penalised.loss(batch)[1]["dag"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        penalised.B[0, 1] = 1.0
    assert penalised.loss(batch)[1]["dag"] > 0.5


class _Interrupted(BaseException):
    """An interruption between two checkpoints (what a kill leaves on disk)."""


def _interrupted_fit(model, tr, va, cfg, after: int, monkeypatch) -> None:
    """Fit until the ``after``-th checkpoint is written, then stop as if killed."""
    from conceptid.models import trainer

    real, saves = trainer.save_checkpoint, []

    def save(path, state):
        real(path, state)
        saves.append(path)
        if len(saves) == after:
            raise _Interrupted

    monkeypatch.setattr(trainer, "save_checkpoint", save)
    with pytest.raises(_Interrupted):
        fit(model, tr, va, cfg)
    monkeypatch.undo()


def test_resume_continues_exactly(tmp_path, data, monkeypatch):
    tr, va, _ = data
    full = _tm()
    h_full = fit(full, tr, va, _cfg(epochs=4, checkpoint=str(tmp_path / "a.pt")))
    _interrupted_fit(_tm(), tr, va, _cfg(epochs=4, checkpoint=str(tmp_path / "b.pt")), 2,
                     monkeypatch)  # fmt: skip
    resumed = _tm()
    h_res = fit(resumed, tr, va, _cfg(epochs=4, checkpoint=str(tmp_path / "b.pt")))
    assert h_res["resumed"] and len(h_res["val_loss"]) == 4
    assert h_res["val_loss"] == h_full["val_loss"]
    assert all(torch.equal(p, q) for p, q in zip(full.parameters(), resumed.parameters()))


def test_bad_checkpoints_are_refused(tmp_path, data):
    tr, va, _ = data
    path = tmp_path / "c.pt"
    fit(_tm(), tr, va, _cfg(epochs=1, checkpoint=str(path)))
    with pytest.raises(CheckpointError, match="holds a TheoremMatchedVAE"):
        fit(PooledVAE((8,), 4, hidden=16), tr, va, _cfg(checkpoint=str(path)))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupted"):
        fit(_tm(), tr, va, _cfg(checkpoint=str(path)))
    assert not list(tmp_path.glob(".c.pt.*"))  # no half-written temp files


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)


def test_early_stopping_restores_the_best_weights(data):
    tr, va, _ = data
    model = _tm()
    h = fit(model, tr, va, _cfg(epochs=40, lr=0.05, patience=2))
    assert len(h["val_loss"]) < 40 or h["best_epoch"] == 39
    from conceptid.models.trainer import evaluate_loss

    g = torch.Generator().manual_seed(2)  # the validation noise stream of seed 1
    assert evaluate_loss(model, va, 64, g) == pytest.approx(min(h["val_loss"]), rel=1e-9)


def test_a_warm_up_stage_is_not_validated(data, monkeypatch):
    """Epochs of a warm-up stage (``hold_early_stop``: the two-step fit's autoencoder) are not
    validated: ``val_loss`` is None there, the validation pass runs only in the objective's
    epochs, early stopping waits, and the best-model tracking starts with the objective."""
    import conceptid.models.trainer as trainer
    from conceptid.models.mle import LatentFlowMLE
    from conceptid.training import Trained

    tr, va, _ = data
    calls = []
    real = trainer.evaluate_loss
    monkeypatch.setattr(trainer, "evaluate_loss", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    model = LatentFlowMLE((8,), (1, 1, 1), nuisance_dim=1, ae_epochs=3, hidden=8)
    h = fit(model, tr, va, _cfg(epochs=5, patience=1))
    # epochs 1-2 in the autoencoder stage; the switch at the end of epoch 3, then validated
    assert h["val_loss"][:2] == [None, None]
    assert all(isinstance(v, float) for v in h["val_loss"][2:]) and len(h["val_loss"]) == 5
    assert len(calls) == 3 and h["best_epoch"] >= 2
    summary = Trained("latent-flow", model, {}, None, h).epochs_summary
    best = min(h["val_loss"][2:])
    assert summary == f"5 epochs, best validation loss {best:.4g}"
    assert Trained("x", model, {}, None, {"val_loss": [None]}).epochs_summary == (
        "1 epoch, no validated epoch"
    )


def _base(tr, va):
    torch.manual_seed(0)
    base = PooledVAE((8,), 4, hidden=16)
    fit(base, tr, va, _cfg(epochs=2))
    return base


def test_frozen_variant_trains_only_the_module(data):
    tr, va, _ = data
    base = _base(tr, va)
    model = ContextModuleVAE.from_base(base, (8,), (1, 1, 1), 1, unfreeze_after=None, hidden=16)
    module_before = [p.clone() for p in model.module.parameters()]
    fit(model, tr, va, _cfg(epochs=3))
    for p, q in zip(model.encoder.parameters(), base.encoder.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(model.decoder.parameters(), base.decoder.parameters()):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(model.module.parameters(), module_before))


def test_fine_tune_variant_unfreezes_on_schedule_and_resumes_unfrozen(tmp_path, data, monkeypatch):
    tr, va, _ = data
    base = _base(tr, va)

    def make():
        torch.manual_seed(0)
        return ContextModuleVAE.from_base(base, (8,), (1, 1, 1), 1, unfreeze_after=2, hidden=16)

    model = make()
    fit(model, tr, va, _cfg(epochs=2))  # unfreezes at the end of epoch 2
    assert all(torch.equal(p, q) for p, q in zip(model.encoder.parameters(),
                                                 base.encoder.parameters()))  # fmt: skip
    assert all(p.requires_grad for p in model.encoder.parameters())
    fit(model, tr, va, _cfg(epochs=2, seed=3))
    assert any(not torch.equal(p, q) for p, q in zip(model.encoder.parameters(),
                                                     base.encoder.parameters()))  # fmt: skip
    # a checkpoint written after the unfreezing epoch resumes with the networks trainable
    path = str(tmp_path / "ft.pt")
    full = make()
    h_full = fit(full, tr, va, _cfg(epochs=4, checkpoint=str(tmp_path / "full.pt")))
    _interrupted_fit(make(), tr, va, _cfg(epochs=4, checkpoint=path), 3, monkeypatch)
    resumed = make()
    h_res = fit(resumed, tr, va, _cfg(epochs=4, checkpoint=path))
    assert h_res["resumed"] and h_res["val_loss"] == h_full["val_loss"]


def test_from_base_rejects_a_base_of_the_wrong_size(data):
    with pytest.raises(ValueError, match="latent dimensions"):
        ContextModuleVAE.from_base(PooledVAE((8,), 3, hidden=16), (8,), (1, 1, 1), 1)


class _Enc(torch.nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 2 * out)
        self.out = out

    def forward(self, x):
        h = self.lin(x)
        return h[:, : self.out], h[:, self.out :]


def test_your_own_encoder_and_decoder_plug_into_the_context_module(data):
    tr, va, _ = data
    model = ContextModuleVAE((8,), (1, 1, 1), 1, encoder=_Enc(4), decoder=torch.nn.Linear(4, 8))
    h = fit(model, tr, va, _cfg(epochs=5, lr=5e-3))
    assert h["val_loss"][h["best_epoch"]] < h["val_loss"][0]
    with pytest.raises(ValueError, match=r"encoder must return \(mean, log_var\)"):
        ContextModuleVAE((8,), (1, 1, 1), 1, encoder=torch.nn.Linear(8, 4))
    with pytest.raises(ValueError, match="decoder must return"):
        ContextModuleVAE((8,), (1, 1, 1), 1, encoder=_Enc(4), decoder=torch.nn.Linear(4, 5))


def test_a_checkpoint_of_other_settings_is_refused_naming_what_differs(tmp_path, data):
    tr, va, _ = data
    path = tmp_path / "c.pt"
    fit(_tm(), tr, va, _cfg(epochs=2, checkpoint=str(path), extra={"dataset": "a" * 64}))
    before = path.read_bytes()
    for kw, named in [({"seed": 2}, "seed 1 -> 2"), ({"batch_size": 32}, "batch_size 64 -> 32"),
                      ({"extra": {"dataset": "b" * 64}}, "dataset aaaaaaaaaaaa... -> "
                                                         "bbbbbbbbbbbb...")]:  # fmt: skip
        cfg = _cfg(epochs=2, checkpoint=str(path), **{"extra": {"dataset": "a" * 64}, **kw})
        with pytest.raises(CheckpointError) as err:
            fit(_tm(), tr, va, cfg)
        msg = str(err.value)
        assert str(path) in msg and named in msg and "\n" not in msg, msg
    assert path.read_bytes() == before  # nothing resumed, nothing rewritten
    # the same settings resume (with 2 epochs done of 2: no more training)
    h = fit(_tm(), tr, va, _cfg(epochs=2, checkpoint=str(path), extra={"dataset": "a" * 64}))
    assert h["resumed"] and len(h["val_loss"]) == 2


def test_a_checkpoint_of_other_shapes_is_refused_in_one_line(tmp_path, data):
    tr, va, _ = data
    path = tmp_path / "c.pt"
    fit(_tm(), tr, va, _cfg(epochs=1, checkpoint=str(path)))
    torch.manual_seed(0)
    wider = TheoremMatchedVAE((8,), (1, 1, 1), nuisance_dim=1, hidden=32)
    with pytest.raises(CheckpointError) as err:
        fit(wider, tr, va, _cfg(epochs=1, checkpoint=str(path)))
    msg = str(err.value)
    assert msg.startswith(f"{path} does not fit this model: ") and "\n" not in msg, msg
    assert "(16, 8) in the file, (32, 8) here" in msg


class _Diverging(TheoremMatchedVAE):
    """Its training loss turns NaN at the ``at``-th training batch (an injected fault, set
    after construction: not an option of the model, so the checkpoint it leaves resumes in
    an undisturbed one)."""

    def __init__(self) -> None:
        super().__init__((8,), (1, 1, 1), nuisance_dim=1, hidden=16)
        self.at, self.calls = 0, 0

    def loss(self, batch, generator=None):
        loss, logs = super().loss(batch, generator)
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                loss = loss * float("nan")
        return loss, logs


def _diverging(at: int) -> _Diverging:
    model = _Diverging()
    model.at = at
    return model


def test_a_nan_loss_stops_training_naming_the_epoch_and_keeps_the_last_checkpoint(
    tmp_path, data
):  # fmt: skip
    from conceptid.models.trainer import TrainingDivergedError
    from conceptid.simulations.errors import ConceptIDError

    tr, va, _ = data
    path = tmp_path / "c.pt"
    per_epoch = -(-len(tr) // 64)
    torch.manual_seed(0)
    model = _diverging(at=2 * per_epoch + 2)  # the second batch of the third epoch
    with pytest.raises(TrainingDivergedError) as err:
        fit(model, tr, va, _cfg(epochs=5, checkpoint=str(path)))
    msg = str(err.value)
    assert isinstance(err.value, ConceptIDError) and "\n" not in msg
    assert "training loss became nan at epoch 3, batch 2" in msg and str(path) in msg, msg
    state = torch.load(path, weights_only=False)
    assert state["epoch"] == 1 and len(state["history"]["val_loss"]) == 2  # epochs 1 and 2
    # the kept checkpoint resumes the same fit an undisturbed model makes
    torch.manual_seed(0)
    h_full = fit(_diverging(at=0), tr, va, _cfg(epochs=5))
    torch.manual_seed(0)
    h_res = fit(_diverging(at=0), tr, va, _cfg(epochs=5, checkpoint=str(path)))
    assert h_res["resumed"] and h_res["val_loss"] == h_full["val_loss"]


def test_resuming_a_fit_that_stopped_early_trains_no_further(tmp_path, data):
    tr, va, _ = data
    path = tmp_path / "c.pt"
    cfg = _cfg(epochs=40, lr=0.05, patience=2, checkpoint=str(path))
    first = _tm()
    h1 = fit(first, tr, va, cfg)
    assert len(h1["val_loss"]) < 40  # it did stop early
    again = _tm()
    h2 = fit(again, tr, va, cfg)
    assert h2["resumed"] and h2["val_loss"] == h1["val_loss"]
    assert all(torch.equal(p, q) for p, q in zip(first.parameters(), again.parameters()))


def test_a_checkpoint_of_a_model_built_with_other_options_is_refused(tmp_path, data):
    """Two whitening powers give the same tensors and the same architecture, and train
    differently: the options saved with the checkpoint tell them apart, naming the option, old
    -> new. A file without them (written before they were saved) is still read."""
    import copy

    from conceptid.models.mle import LatentFlowMLE
    from conceptid.models.trainer import load_checkpoint, read_checkpoint, save_checkpoint

    tr, va, _ = data

    def model(power):
        torch.manual_seed(0)
        return LatentFlowMLE((8,), (1, 1, 1), nuisance_dim=1, ae_epochs=1, hidden=16,
                             flow_layers=2, flow_hidden=8, ae_whitening=power)  # fmt: skip

    one = model(0.5)
    options = one.options()
    assert options["ae_whitening"] == 0.5 and options["flow_layers"] == 2
    assert options["rec_weight"] == 100.0  # a default, recorded too
    assert options["block_sizes"] == [1, 1, 1] and options["encoder"] is None
    assert copy.deepcopy(one).options() == options  # a copy keeps what its original was built with
    path = tmp_path / "c.pt"
    fit(one, tr, va, _cfg(epochs=2, checkpoint=str(path)))
    assert read_checkpoint(path)["options"] == options
    with pytest.raises(CheckpointError) as err:
        fit(model(0.25), tr, va, _cfg(epochs=2, checkpoint=str(path)))
    assert str(err.value) == (f"{path} was written by a model built with other options: "
                              "ae_whitening 0.5 -> 0.25")  # fmt: skip
    h = fit(model(0.5), tr, va, _cfg(epochs=2, checkpoint=str(path)))  # the same options resume
    assert h["resumed"]
    old = read_checkpoint(path)
    del old["options"]
    save_checkpoint(path, old)
    load_checkpoint(path, model(0.25))


def test_construction_options_are_plain_values():
    """Arrays and tensors by shape, dtype and content hash (a 0-d one apart from a 1-element
    one; bfloat16 and sparse ones too); a given net by its class; a NaN equal to itself; a set
    in one order whatever the hash seed; no object addresses."""
    import numpy as np

    from conceptid.models.contract import construction_options

    got = construction_options({"a": np.arange(3), "b": torch.nn.Linear(2, 2), "c": (1, 2.5),
                                "d": np.float32(0.5), "e": object(), "f": float("nan"),
                                "g": {"b", "a", "c"}})  # fmt: skip
    assert got["a"].startswith("array[3] int64 ") and len(got["a"].split()[-1]) == 64
    assert got["a"] == construction_options({"a": np.arange(3)})["a"]
    assert got["a"] != construction_options({"a": np.arange(1, 4)})["a"]
    assert got["b"] == "given Linear" and got["c"] == [1, 2.5] and got["d"] == 0.5
    assert " at 0x" not in got["e"]
    assert got["f"] == "nan" and got["g"] == ["a", "b", "c"]
    assert got == construction_options({**dict(zip("abcdef", [np.arange(3), torch.nn.Linear(
        3, 3), [1, 2.5], 0.5, object(), float("nan")])), "g": frozenset("cab")})  # fmt: skip
    zero, one = (construction_options({"t": torch.tensor(v)})["t"] for v in (1.0, [1.0]))
    assert zero.startswith("array[] ") and one.startswith("array[1] ")
    half = construction_options({"t": torch.ones(2, dtype=torch.bfloat16)})["t"]
    assert half.startswith("array[2] bfloat16 ")
    sparse = construction_options({"t": torch.eye(2).to_sparse()})["t"]
    assert sparse == construction_options({"t": torch.eye(2)})["t"]


def test_options_that_cannot_be_told_exactly_are_not_recorded():
    """A constructor taking ``*args`` or ``**kwargs`` (one model, asked for in ways that bind
    differently) or an argument that cannot be shown: the options are unknown (None), and the
    model is built all the same."""
    from conceptid.models.estimators import PooledVAE

    class Star(PooledVAE):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    class Odd(PooledVAE):
        def __init__(self, obs_shape, latent_dim, tag=None):
            super().__init__(obs_shape, latent_dim)

    assert Star((4,), 2).options() is None and Star(obs_shape=(4,), latent_dim=2).options() is None
    loop = []
    loop.append(loop)
    assert Odd((4,), 2, tag=loop).options() is None
    assert Odd((4,), 2).options()["tag"] is None


def test_an_option_the_file_does_not_record_is_compared_with_its_default():
    """An option a release added is compared with its default (what the release that wrote
    the file built); one a release removed is not compared; one both record and that differs
    is named."""
    from conceptid.models.trainer import options_difference

    assert options_difference({"a": 1}, {"a": 1, "new": 0.0}) is None  # no defaults known
    assert options_difference({"a": 1}, {"a": 1, "new": 0.0}, {"new": 0.0}) is None
    assert options_difference({"a": 1}, {"a": 1, "new": 0.5}, {"new": 0.0}) == "new 0.0 -> 0.5"
    assert options_difference({"a": 1, "gone": 2}, {"a": 1}, {"a": 0}) is None
    assert options_difference({"a": 1, "b": 2}, {"a": 3, "b": 2, "new": 0}) == "a 1 -> 3"
    assert options_difference(None, {"a": 1}) is None


def test_a_checkpoint_from_before_an_option_resumes_only_into_its_default(tmp_path, data):
    """Found by review: a checkpoint written before ae_gaussianity existed resumed silently
    into a model built with ae_gaussianity=0.5, which trains differently."""
    from conceptid.models.contract import option_defaults
    from conceptid.models.mle import LatentFlowMLE
    from conceptid.models.trainer import load_checkpoint, read_checkpoint, save_checkpoint

    tr, va, _ = data

    def model(lam):
        torch.manual_seed(0)
        return LatentFlowMLE((8,), (1, 1, 1), nuisance_dim=1, ae_epochs=1, hidden=16,
                             flow_layers=2, flow_hidden=8, ae_gaussianity=lam)  # fmt: skip

    assert option_defaults(model(0.5))["ae_gaussianity"] == 0.0
    path = tmp_path / "c.pt"
    fit(model(0.0), tr, va, _cfg(epochs=2, checkpoint=str(path)))
    old = read_checkpoint(path)
    del old["options"]["ae_gaussianity"]  # as the release before the option wrote it
    save_checkpoint(path, old)
    load_checkpoint(path, model(0.0))  # its default: the same model
    with pytest.raises(CheckpointError, match="other options: ae_gaussianity 0.0 -> 0.5"):
        load_checkpoint(path, model(0.5))


def test_a_checkpoint_of_the_same_tensors_in_another_architecture_is_refused(tmp_path, data):
    """A SiLU flow and a leaky-ReLU flow hold the same tensors: the saved architecture tells
    them apart, in one line naming the first layer that differs. A file without one (written
    before it was saved) is still read by its tensors. The architecture does not depend on the
    dtype or on training."""
    from conceptid.models.mle import LatentFlowMLE
    from conceptid.models.trainer import (
        architecture,
        load_checkpoint,
        read_checkpoint,
        save_checkpoint,
    )

    tr, va, _ = data

    def model(activation):
        torch.manual_seed(0)
        return LatentFlowMLE((8,), (1, 1, 1), nuisance_dim=1, ae_epochs=1, hidden=16,
                             flow_layers=2, flow_hidden=8, flow_activation=activation)  # fmt: skip

    path = tmp_path / "c.pt"
    fit(model("silu"), tr, va, _cfg(epochs=2, checkpoint=str(path)))
    with pytest.raises(CheckpointError) as err:
        fit(model("leaky_relu"), tr, va, _cfg(epochs=2, checkpoint=str(path)))
    msg = str(err.value)
    assert msg.startswith(f"{path} was written by a model of another architecture: ")
    layer = "flow.layers.0.net.1"
    assert f"'{layer}: SiLU' in the file, '{layer}: LeakyReLU(negative_slope=0.2)' here" in msg
    assert "\n" not in msg
    old = read_checkpoint(path)
    assert old["architecture"] == architecture(model("silu").double())
    del old["architecture"], old["options"]  # as written before either was saved
    save_checkpoint(path, old)
    leaky = model("leaky_relu")
    load_checkpoint(path, leaky)
    assert torch.equal(leaky.flow.head.weight, old["model"]["flow.head.weight"])


# -- found by review (models layer) ---------------------------------------------------------


def test_fitting_a_trained_two_step_model_again_keeps_its_frozen_encoder(data):
    # prepare() reset the encoder's linear path to PCA whatever the stage, so a second fit of
    # a model in step 2 (its encoder frozen) silently moved its latent
    from conceptid.models.mle import LatentFlowMLE

    tr, va, _ = data
    torch.manual_seed(0)
    model = LatentFlowMLE((8,), (1, 1, 1), nuisance_dim=1, ae_epochs=1, snap_every=0, hidden=8)
    fit(model, tr, va, _cfg(epochs=2))
    assert int(model.stage) == 1
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    fit(model, tr, va, _cfg(epochs=1, lr=1e-12))
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_generate_draws_in_the_models_dtype(data):
    # the nuisance noise was drawn in torch's default dtype: a float64 model failed
    from conceptid.models.mle import LatentFlowMLE

    torch.manual_seed(0)
    for model in (ContextModuleVAE((8,), (1, 1, 1), 1, hidden=8).double(),
                  TheoremMatchedVAE((8,), (1, 1, 1), nuisance_dim=1, hidden=8).double(),
                  LatentFlowMLE((8,), (1, 1, 1), nuisance_dim=1, hidden=8).double(),
                  PooledVAE((8,), 4, hidden=8).double()):  # fmt: skip
        x = model.generate(torch.tensor([1, 0, 0]), 3, generator=torch.Generator().manual_seed(0))
        assert x.shape == (3, 8) and x.dtype == torch.float64
    # and the same seed gives the same draws as before the change for a float32 model
    model = PooledVAE((8,), 4, hidden=8)
    g = torch.Generator().manual_seed(3)
    want = model._decode_mean(model.decoder(torch.randn(5, 4, generator=g)))
    got = model.generate(torch.zeros(3), 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(got, want)


def test_generate_refuses_a_target_set_that_is_no_mask_and_sizes_beyond_memory():
    from conceptid.simulations.errors import UsageError
    from conceptid.simulations.resources import MemoryLimitError

    model = PooledVAE((8,), 4, hidden=8)
    with pytest.raises(UsageError, match="targets must be a 0/1 mask"):
        model.generate("ab", 2)
    with pytest.raises(MemoryLimitError, match="generating 10000000000000 samples"):
        model.generate(torch.zeros(3), 10**13)
    assert IVAE((8,), 4, 3, hidden=8).generate(torch.zeros(0, 3, dtype=torch.bool)).shape == (0, 8)


def test_a_nan_restart_score_never_wins(data, monkeypatch):
    from conceptid.models.trainer import fit_restarts

    tr, va, _ = data
    scores = iter([float("nan"), 1.0, 0.5])
    monkeypatch.setattr(TheoremMatchedVAE, "selection_score", lambda self, d: next(scores))
    _, hist = fit_restarts(_tm, tr, va, _cfg(epochs=1), restarts=3)
    assert hist["restart"] == 2 and hist["restart_scores"][0] == float("inf")


def test_extra_settings_may_not_overwrite_the_configs_own():
    from conceptid.simulations.errors import UsageError

    with pytest.raises(UsageError, match=r"extra may not repeat a setting of its own: \['seed'\]"):
        TrainConfig(seed=5, extra={"seed": 0})


def test_context_module_vae_exogenous_holds_its_targets_to_the_contract():
    from conceptid.simulations.errors import UsageError

    model = ContextModuleVAE((8,), (1, 1, 1), 1, hidden=8)
    x = torch.zeros(4, 8)
    with pytest.raises(UsageError):
        model.exogenous(x, torch.full((4, 3), 0.5))
    with pytest.raises(UsageError):
        model.exogenous(x, torch.zeros(3, 3, dtype=torch.bool))


def test_a_resumed_fit_reports_its_whole_training_time(tmp_path, data, monkeypatch):
    # found by review: the checkpoint kept no time, so a fit resumed after 2 of 4 epochs
    # reported the last 2 epochs' time only
    from conceptid.models import trainer

    tr, va, _ = data
    cfg = _cfg(epochs=4, checkpoint=str(tmp_path / "t.pt"))
    _interrupted_fit(_tm(), tr, va, cfg, 2, monkeypatch)
    before = torch.load(tmp_path / "t.pt", weights_only=False)["history"]["seconds"]
    assert before > 0
    clock = iter(range(10**6))  # a clock of 1000 s per reading: the resumed part takes 1000 s
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: 1000.0 * next(clock))
    h = fit(_tm(), tr, va, cfg)
    assert h["resumed"] and h["seconds"] >= before + 1000.0
