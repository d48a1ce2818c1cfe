"""The smallest data a user can bring: one concept, one observed dimension, fewer training rows
than the latent, a held-out context of one row; and the inputs found with them (an empty
context table, an empty --targets, a NaN in the provenance, an --out that is a link). Each either
works end to end or is refused up front: one line, exit 2, nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli_hardening import refused  # one line on stderr, exit 2, nothing on stdout

from conceptid.cli import main
from conceptid.models.mle import LatentFlowMLE
from conceptid.models.trainer import check_split
from conceptid.pipeline import splits
from conceptid.simulations.benchmark import DatasetError, load_dataset
from conceptid.simulations.errors import UsageError
from conceptid.simulations.imported import from_arrays, from_folders


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def ok(argv: list[str], capsys) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def write_arrays(root: Path, x: np.ndarray, labels: np.ndarray, contexts: dict, **extra) -> tuple:
    np.save(root / "x.npy", x)
    spec = {"concepts": sorted({t for ts in contexts.values() for t in ts}),
            "contexts": contexts, "labels": labels.tolist(), **extra}  # fmt: skip
    (root / "ctx.json").write_text(json.dumps(spec))
    return root / "x.npy", root / "ctx.json"


@pytest.fixture(scope="module")
def one_concept(tmp_path_factory) -> tuple[Path, Path]:
    """A generated chain of one concept (no nuisance: a latent of one dimension) and a run of
    the context module as exact prior trained on it."""
    root = tmp_path_factory.mktemp("m1")
    data, run = root / "data", root / "run"
    assert main(["simulate", "--preset", "chain", "--m", "1", "--n-per-context", "40",
                 "--out", str(data), "--quiet"]) == 0  # fmt: skip
    assert main(["train", str(data), "--out", str(run), "--methods", "context-flow",
                 "--epochs", "3", "--quiet"]) == 0  # fmt: skip
    return data, run


def test_one_concept_without_nuisance_trains_and_snaps(one_concept):
    """np.cov of one latent column is 0-d; the snap reads it as the 1x1 covariance it is."""
    data, run = one_concept
    ds = load_dataset(data)
    assert tuple(ds.block_sizes) == (1,) and ds.nuisance_dim == 0
    _, (tr, _, _, _) = splits(ds)
    p = tr.x.shape[1]
    torch.manual_seed(0)  # a user's own nets: one linear map each way
    model = LatentFlowMLE((p,), [1], 0, ae_epochs=0, encoder=torch.nn.Linear(p, 1),
                          decoder=torch.nn.Linear(1, p))  # fmt: skip
    model.prepare(tr)  # ae_epochs=0: the likelihood starts at once, from a snap
    assert model.snaps["applied"] == 1
    # the snapped concept has unit variance in the observational context
    obs = ~tr.targets.any(1)
    with torch.no_grad():
        u = model.concepts(tr.x[obs]).double().numpy()[:, 0]
    assert u.var(ddof=1) == pytest.approx(1.0, abs=1e-4)
    assert (run / "models" / "context-flow" / "final.pt").exists()


def test_inspect_draws_one_concept(one_concept, tmp_path, capsys):
    data, _ = one_concept
    fig = tmp_path / "m1.png"
    ok(["inspect", str(data), "--per-context", "2", "--figure", str(fig)], capsys)
    assert fig.read_bytes()[:4] == b"\x89PNG"


def test_an_empty_targets_is_refused_not_read_as_observational(one_concept, tmp_path, capsys):
    _, run = one_concept
    before = listing(tmp_path)
    line = refused(["generate", str(run / "models" / "context-flow"), "--targets", "",
                    "--out", str(tmp_path / "g.npy")], capsys)  # fmt: skip
    assert "--targets is empty; leave it out" in line
    assert listing(tmp_path) == before
    # left out, it is the observational context
    ok(["generate", str(run / "models" / "context-flow"), "--n", "5", "--out",
        str(tmp_path / "g.npy")], capsys)  # fmt: skip
    assert np.load(tmp_path / "g.npy").shape[0] == 5


def test_fewer_training_rows_than_the_latent_is_refused_before_any_write(tmp_path, capsys):
    """Three rows per context, one of each for training: 3 rows, where the context module's
    latent of 2 concepts and 2 nuisance coordinates needs 5 (its PCA start spans them)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 3)
    x_path, ctx = write_arrays(tmp_path, rng.normal(size=(9, 6)), labels,
                               {"obs": [], "a": ["a"], "b": ["b"]})  # fmt: skip
    data = tmp_path / "data"
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(data),
        "--fractions", "0.34,0.33,0.33"], capsys)  # fmt: skip
    for cmd in (["train", str(data)], ["run", "--data", str(data)],
                ["train", str(data), "--retrain"]):  # fmt: skip
        before = listing(tmp_path)
        # pooled first: it trains on 3 rows, and would have been written before the refusal
        line = refused([*cmd, "--out", str(tmp_path / "run"), "--methods",
                        "pooled,context-flow", "--epochs", "1"], capsys)  # fmt: skip
        assert "the training data has 3 rows; LatentFlowMLE needs at least 5" in line
        assert listing(tmp_path) == before  # no run directory, no copy of the data
    # the trainer's own check says the same, in Python
    ds = load_dataset(data)
    _, (tr, _, _, _) = splits(ds)
    model = LatentFlowMLE(tr.x.shape[1:], [1, 1], 2)
    assert model.min_training_rows == 5
    # your own nets start at no principal components: one row is enough to start
    own = LatentFlowMLE(tr.x.shape[1:], [1, 1], 2, ae_epochs=0, encoder=torch.nn.Linear(6, 4),
                        decoder=torch.nn.Linear(4, 6))  # fmt: skip
    assert own.min_training_rows == 1
    with pytest.raises(UsageError, match="has 3 rows; LatentFlowMLE needs at least 5"):
        check_split(model, tr, "training")


def test_one_observed_dimension_and_a_one_row_held_out_context_run_end_to_end(tmp_path, capsys):
    """p = 1 (the figures' principal components have one column) and a held-out composition
    of a single test row: the run writes its report."""
    rng = np.random.default_rng(1)
    labels = np.r_[np.repeat(np.arange(3), 20), 3]
    x = rng.normal(size=(61, 1)) + 2.0 * np.isin(labels, [1, 3])[:, None]
    x_path, ctx = write_arrays(tmp_path, x, labels,
                               {"obs": [], "a": ["a"], "b": ["b"], "ab": ["a", "b"]},
                               held_out=[["a", "b"]])  # fmt: skip
    data, run = tmp_path / "data", tmp_path / "run"
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out", str(data),
        "--nuisance-dim", "0"], capsys)  # fmt: skip
    fig = tmp_path / "inspect.png"
    ok(["inspect", str(data), "--figure", str(fig)], capsys)
    assert fig.read_bytes()[:4] == b"\x89PNG"
    ok(["run", "--data", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
        "--quiet"], capsys)  # fmt: skip
    assert (run / "report.md").exists()
    m = json.loads((run / "metrics.json").read_text())["methods"]["pooled"]
    assert math.isfinite(m["concept_swd"])
    assert (run / "figures" / "samples_per_context.png").exists()


def test_an_empty_context_table_of_folders_is_refused_by_name(tmp_path, capsys):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "contexts.json").write_text(json.dumps({"concepts": ["a"], "contexts": {}}))
    with pytest.raises(DatasetError, match="contexts is empty"):
        from_folders(root)
    before = listing(tmp_path)
    line = refused(["import", "--folders", str(root), "--out", str(tmp_path / "ds")], capsys)
    assert "contexts is empty" in line
    assert listing(tmp_path) == before
    (root / "contexts.json").write_text(json.dumps({"concepts": ["a"], "contexts": [[]]}))
    with pytest.raises(DatasetError, match="must map each context's name to its targets"):
        from_folders(root)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_in_the_provenance_is_refused(bad):
    x, labels = np.zeros((30, 3)), np.repeat(np.arange(3), 10)
    x[:, 0] = np.arange(30)
    with pytest.raises(UsageError, match=r"source\.k: .*JSON holds finite numbers only"):
        from_arrays(x, labels, ["a", "b"], contexts={"obs": [], "a": ["a"], "b": ["b"]},
                    source={"k": bad})  # fmt: skip


def test_an_out_that_links_to_an_empty_directory_receives_the_dataset(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x_path, ctx = write_arrays(tmp_path, rng.normal(size=(30, 4)), np.repeat(np.arange(3), 10),
                               {"obs": [], "a": ["a"], "b": ["b"]})  # fmt: skip
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    ok(["import", "--arrays", str(x_path), "--contexts", str(ctx), "--out",
        str(tmp_path / "link")], capsys)  # fmt: skip
    assert (tmp_path / "link").is_symlink()  # the user's link is kept, the files behind it
    assert load_dataset(tmp_path / "real").x.shape == (30, 4)
    assert load_dataset(tmp_path / "link").card == load_dataset(tmp_path / "real").card
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
