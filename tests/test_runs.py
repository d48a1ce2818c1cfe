"""A run never lies and never destroys: run directories, reuse by settings, checkpoints, honest
reports, interventions only from models that can make them, samples in the data's units, training
faults, and a kill at any moment."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import one_error

from conceptid import pipeline, training
from conceptid.cli import main
from conceptid.models import trainer
from conceptid.models.trainer import CheckpointError, settings_key
from conceptid.rundir import is_run_dir
from conceptid.simulations.benchmark import DatasetError, load_dataset

REPO = Path(__file__).resolve().parents[1]
DATA = ["--preset", "random", "--preset-arg", "m=3", "--preset-arg", "nuisance_dim=1",
        "--n-per-context", "40"]  # fmt: skip
TRAIN = ["--epochs", "3", "--restarts", "2", "--methods", "pooled,latent-flow", "--quiet"]
TEMPORARY = re.compile(r"^\..+\.(partial|tmp|old)-\d+-")


class _Interrupted(BaseException):
    """Stops a command between two statements, as a kill would (no handler runs for it)."""


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run: what every interrupted one must end up as."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["run", *DATA, *TRAIN, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def data(reference) -> Path:
    return reference / "data"


# -- run directories ------------------------------------------------------------------------------


def test_commands_refuse_a_directory_the_package_did_not_write(tmp_path, data, capsys):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "notes.txt").write_text("mine")
    before = listing(tmp_path)
    for args in (["run", *DATA, "--out", str(proj), "--quiet"],
                 ["train", str(data), "--out", str(proj), "--methods", "pooled"]):  # fmt: skip
        err = one_error(args, capsys)
        assert f"refusing to write into {proj}: not a conceptid run directory" in err
        assert "(contains notes.txt, src/)" in err
    assert "not a conceptid run directory" in one_error(["evaluate", str(proj)], capsys)
    assert listing(tmp_path) == before


def test_evaluate_refuses_what_is_in_the_way_before_any_work(reference, tmp_path, capsys):
    # found by review: a directory at report.md failed after the whole evaluation, with
    # metrics.json and the figures written; a model copied into another method's folder
    # replaced that method without a word
    for blocker, make in [("report.md", Path.mkdir), ("metrics.json", Path.mkdir),
                          ("figures", lambda p: p.write_text("mine"))]:  # fmt: skip
        run = tmp_path / blocker.replace(".", "_")
        shutil.copytree(reference, run)
        shutil.rmtree(run / "figures")
        for name in ("metrics.json", "timings.json", "report.md"):
            (run / name).unlink()
        make(run / blocker)
        before = listing(run)
        err = one_error(["evaluate", str(run)], capsys)
        assert f"{run / blocker} is in the way of an output of the run" in err
        assert listing(run) == before
        err = one_error(["run", *DATA, *TRAIN, "--out", str(run)], capsys)  # run: before training
        assert "is in the way" in err and listing(run) == before
    run = tmp_path / "swapped"
    shutil.copytree(reference, run)
    shutil.copy(run / "models" / "latent-flow" / "final.pt", run / "models" / "pooled" / "final.pt")
    err = one_error(["evaluate", str(run)], capsys)
    assert "holds a model of latent-flow, not of pooled" in err


def test_a_symlinked_figures_folder_stays_the_users(reference, tmp_path, capsys):
    # found by review: train --retrain removed the old evaluation and called rmdir on a
    # symlinked figures/ (exit 1, nothing retrained)
    run, shared = tmp_path / "run", tmp_path / "shared"
    shutil.copytree(reference, run)
    shutil.copytree(run / "figures", shared)
    shutil.rmtree(run / "figures")
    (run / "figures").symlink_to(shared)
    (shared / "mine.txt").write_text("mine")
    assert main(["train", str(run / "data"), "--out", str(run), "--methods", "pooled",
                 "--epochs", "1", "--retrain", "--quiet"]) == 0  # fmt: skip
    assert (run / "figures").is_symlink() and (shared / "mine.txt").read_text() == "mine"
    assert not (run / "report.md").exists()  # the old evaluation described the old model
    assert main(["evaluate", str(run)]) == 0
    assert (shared / "samples_per_context.png").is_file()
    capsys.readouterr()


def test_a_damaged_run_marker_is_named_as_such(reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "run.json").write_text("{bad")
    err = one_error(["evaluate", str(run)], capsys)
    assert "has a run.json that is not a run marker" in err


def test_an_npz_archive_named_npy_is_a_dataset_error(reference, tmp_path):
    # found by review: np.load opens an .npz archive whatever its name; load_dataset then
    # failed with AttributeError ('NpzFile' object has no attribute 'dtype')
    data = tmp_path / "data"
    shutil.copytree(reference / "data", data)
    x = np.load(data / "x.npy")
    with open(data / "x.npy", "wb") as fh:
        np.savez(fh, x=x)
    with pytest.raises(DatasetError, match="not a .npy array"):
        load_dataset(data)


# -- one command at a time ------------------------------------------------------------------------

_HOLD = ("import sys, time\n"
         "from conceptid.rundir import run_lock\n"
         "with run_lock(sys.argv[1]):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(120)\n")  # fmt: skip


def _holder(path: Path) -> subprocess.Popen:
    """Another process holding ``path``'s lock, as a second command on it would."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True, cwd=REPO)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_command_on_a_run_directory_is_refused_while_the_first_works(
    reference, tmp_path, data, capsys
):  # fmt: skip
    from conceptid.sweep import Sweep, SweepError, run_sweep

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    sweep_dir = tmp_path / "sweep"
    holders = [_holder(run), _holder(sweep_dir)]
    try:
        for args in (["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "3",
                      "--restarts", "2", "--quiet"],
                     ["run", *DATA, *TRAIN, "--out", str(run)],
                     ["evaluate", str(run)]):  # fmt: skip
            err = one_error(args, capsys)
            assert f"{run} is in use by another conceptid command" in err
        bench = [{"label": "c", "spec": {"preset": "chain"}}]
        sw = Sweep.from_dict({"name": "t", "benchmarks": bench, "methods": ["pooled"],
                              "seeds": [0], "task": "conceptid.sweep:toy_cell"})  # fmt: skip
        with pytest.raises(SweepError, match="in use by another conceptid command"):
            run_sweep(sw, sweep_dir, progress=False)
        assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
        assert listing(sweep_dir) == []
    finally:
        for h in holders:
            h.kill()
            h.wait()
    # a killed holder's lock goes with it: the directory is free at once
    from conceptid.rundir import run_lock

    with run_lock(run):
        with run_lock(run):  # and this process may take it again (run holds it, then train)
            pass


def test_a_refused_lock_leaves_no_directory_it_made(tmp_path):
    from conceptid.rundir import RunDirError, run_lock

    missing = tmp_path / "a" / "b"
    with pytest.raises(RunDirError, match="bad"):
        with run_lock(missing):
            assert missing.is_dir()  # made to be locked
            raise RunDirError("bad")
    assert list(tmp_path.iterdir()) == []  # both levels it made, removed
    (tmp_path / "kept").mkdir()
    with run_lock(tmp_path / "kept"):
        pass
    assert (tmp_path / "kept").is_dir()  # not made here: stays, empty or not


def test_train_holds_the_lock_for_the_whole_command(tmp_path, data, capsys):
    """Found by review: `train` recorded its dataset in run.json before it took the lock, so
    a refused second `train` (another copy of the data) still rewrote the first's record."""
    ds1, ds2 = tmp_path / "ds1", tmp_path / "ds2"
    shutil.copytree(data, ds1)
    shutil.copytree(data, ds2)
    run = tmp_path / "run"
    assert main(["train", str(ds1), "--out", str(run), "--methods", "pooled", "--epochs", "1",
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    marker = (run / "run.json").read_text()
    holder = _holder(run)
    try:
        err = one_error(["train", str(ds2), "--out", str(run), "--methods", "pooled", "--epochs",
                         "1", "--retrain", "--quiet"], capsys)  # fmt: skip
        assert "is in use by another conceptid command" in err
    finally:
        holder.kill()
        holder.wait()
    assert (run / "run.json").read_text() == marker  # still the first dataset's


def test_the_lock_across_threads_file_systems_and_odd_paths(tmp_path, monkeypatch):
    import errno
    import fcntl
    import threading

    from conceptid.pipeline import evaluate_dir
    from conceptid.rundir import RunDirError, run_lock

    # another thread of this process is another command: refused (review: it got in)
    d = tmp_path / "d"
    d.mkdir()
    seen = []

    def second():
        try:
            with run_lock(d):
                seen.append("in")
        except RunDirError as e:
            seen.append(str(e))

    with run_lock(d):
        t = threading.Thread(target=second)
        t.start()
        t.join()
    assert len(seen) == 1 and "in use by another conceptid command" in seen[0]

    # a file system that cannot lock (NFS without locking): unlocked, not "in use"
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    with monkeypatch.context() as m:
        m.setattr(fcntl, "flock", no_locks)
        with run_lock(d):
            pass
    # a missing run is refused by evaluate_dir itself, with no OSError chained to it
    with pytest.raises(RunDirError, match="does not exist") as err:
        evaluate_dir(tmp_path / "missing")
    assert err.value.__context__ is None and not (tmp_path / "missing").exists()
    # a NUL in the path, a name too long, x/../y: nothing left behind, no bare OSError
    with run_lock(str(tmp_path / "a\0b")):
        pass
    with run_lock(tmp_path / "new" / ("n" * 300)):
        pass
    with run_lock(tmp_path / "x" / ".." / "y"):
        assert (tmp_path / "y").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # new, x and y removed


# -- a saved model is reused only under the settings it was trained with --------------------------


def test_a_model_is_reused_only_under_its_own_settings(tmp_path, data, capsys, monkeypatch):
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--methods", "pooled", "--quiet"]
    assert main([*args, "--epochs", "2"]) == 0
    final = run / "models" / "pooled" / "final.pt"
    saved = final.read_bytes()
    (run / "models" / "pooled" / "notes.txt").write_text("mine")

    def no_training(*a, **k):
        raise AssertionError("retrained a model saved under the same settings")

    with monkeypatch.context() as m:
        m.setattr(training, "fit_restarts", no_training)
        assert main([*args, "--epochs", "2"]) == 0
    assert "pooled: reused" in capsys.readouterr().out
    for extra, named in [(["--epochs", "3"], "epochs 2 -> 3"),
                         (["--epochs", "2", "--seed", "4"], "seed 0 -> 4"),
                         (["--epochs", "2", "--batch-size", "64"], "batch_size 128 -> 64"),
                         (["--epochs", "2", "--restarts", "2"], "restarts 1 -> 2")]:  # fmt: skip
        err = one_error([*args, *extra], capsys)
        assert f"{final} was trained under other settings: {named}" in err and "--retrain" in err
        assert final.read_bytes() == saved
    assert main([*args, "--epochs", "3", "--retrain"]) == 0
    state = torch.load(final, weights_only=False)
    assert state["settings"]["epochs"] == 3 and state["key"] == settings_key(state["settings"])
    assert (run / "models" / "pooled" / "notes.txt").read_text() == "mine"  # not the package's


def test_run_refuses_a_saved_model_of_other_settings_before_its_data_stage(tmp_path, data,
                                                                           capsys):  # fmt: skip
    """`run` into a run directory whose model was trained under other settings stops before
    its first stage (no dataset generated, loaded into the run or copied, nothing printed on
    stdout), as `train` does: its final.pt, or the checkpoint an interrupted run left. What
    only the data tell (their hash) is refused once they are at hand, before they are saved."""
    run = tmp_path / "run"
    base = ["run", "--preset", "random", "--preset-arg", "m=3", "--n-per-context", "40",
            "--methods", "pooled", "--quiet", "--out", str(run)]  # fmt: skip
    assert main([*base, "--epochs", "1"]) == 0
    capsys.readouterr()
    final = run / "models" / "pooled" / "final.pt"

    def refused(args: list[str], named: str) -> None:
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        rc = main(args)
        got = capsys.readouterr()
        assert rc == 2 and got.out == "", got.out  # no stage began
        assert len(got.err.strip().splitlines()) == 1 and named in got.err, got.err
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    refused([*base, "--epochs", "2"], f"{final} was trained under other settings: epochs 1 -> 2")
    shutil.rmtree(run / "data")  # generating it again would take the time a refusal saves
    refused([*base, "--epochs", "2"], "epochs 1 -> 2")
    assert not (run / "data").exists()
    refused(["run", "--data", str(data), "--out", str(run), "--methods", "pooled", "--epochs",
             "2", "--quiet"], "epochs 1 -> 2")  # fmt: skip
    assert not (run / "data").exists()
    final.rename(final.with_name("checkpoint.pt"))  # as an interrupted run leaves it
    refused([*base, "--epochs", "2"], "checkpoint.pt belongs to another training, refusing to "
            "resume it: epochs 1 -> 2")  # fmt: skip
    final.with_name("checkpoint.pt").rename(final)
    # the same settings on other data: known only once generated; refused before it is saved
    other = [a if a != "40" else "41" for a in base]
    rc = main([*other, "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{final} was trained under other settings: dataset " in err, err
    assert not (run / "data").exists()
    assert main([*base, "--epochs", "2", "--retrain"]) == 0  # the way out still works
    assert torch.load(final, weights_only=False)["settings"]["epochs"] == 2


@pytest.mark.parametrize("blocker", ["models", "models/pooled", "models/pooled/final.pt",
                                     "models/pooled/checkpoint.pt"])  # fmt: skip
def test_something_in_the_way_of_a_methods_files_is_refused_up_front(tmp_path, data, capsys,
                                                                 blocker):  # fmt: skip
    """Found by review: a file at RUN/models or RUN/models/METHOD failed with a raw errno after
    the data and check stages (exit 1), and a directory at final.pt was refused with advice to
    pass --retrain, which trained and then failed to save. Now one line before anything,
    whatever --retrain says (the package removes only files it wrote)."""
    for cmd in (["run", "--preset", "random", "--preset-arg", "m=3", "--n-per-context", "40"],
                ["train", str(data)]):  # fmt: skip
        run = tmp_path / cmd[0]
        run.mkdir()
        (run / "run.json").write_text('{"format": "conceptid.run/1"}')
        blocked = run / blocker
        blocked.parent.mkdir(parents=True, exist_ok=True)
        if blocker.endswith(".pt"):
            blocked.mkdir()
        else:
            blocked.write_text("mine")
        before = listing(run)
        for retrain in ([], ["--retrain"]):
            err = one_error([*cmd, "--out", str(run), "--methods", "context-module,pooled",
                             "--epochs", "1", "--quiet", *retrain], capsys)  # fmt: skip
            assert f"{blocked} is in the way of the files of" in err and "move it away" in err
            assert "--retrain" not in err
            assert listing(run) == before
            assert (run / "run.json").read_text() == '{"format": "conceptid.run/1"}'


def test_a_linked_models_folder_is_followed(reference, tmp_path, capsys, monkeypatch):
    """Found by review: models (or models/METHOD) as a link to a directory elsewhere, a
    legitimate setup that was reused before, was refused as 'not a directory'."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    store = tmp_path / "store"
    (run / "models").rename(store)
    (run / "models").symlink_to(store)

    def no_training(*a, **k):
        raise AssertionError("retrained a model saved under the same settings")

    with monkeypatch.context() as m:
        m.setattr(training, "fit_restarts", no_training)
        assert main(["run", *DATA, *TRAIN, "--out", str(run)]) == 0
    (store / "pooled").rename(tmp_path / "pooled")
    (store / "pooled").symlink_to(tmp_path / "gone")
    err = one_error(["run", *DATA, *TRAIN, "--out", str(run)], capsys)
    assert f"{store / 'pooled'}" in err or f"{run / 'models' / 'pooled'}" in err
    assert "is a broken symbolic link (to " in err and "in the way of the files of pooled" in err


def test_run_refuses_data_in_the_way_before_its_first_stage(reference, tmp_path, capsys):
    """Found by review: `run` announced its data stage, then refused RUN/data of another spec
    or a file at RUN/data; now the refusal is all it prints."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = listing(run)
    args = ["run", "--preset", "random", "--preset-arg", "m=3", "--preset-arg", "nuisance_dim=1",
            "--n-per-context", "41", *TRAIN, "--out", str(run)]  # fmt: skip
    rc = main(args)
    got = capsys.readouterr()
    assert rc == 2 and got.out == "" and "holds a dataset of a different spec" in got.err
    assert listing(run) == before
    shutil.rmtree(run / "data")
    (run / "data").write_text("mine")
    rc = main(args)
    got = capsys.readouterr()
    assert rc == 2 and got.out == "" and "data is not a dataset directory" in got.err


def test_evaluate_writes_the_check_it_states(reference, tmp_path):
    """Found by review: `evaluate --check-method numeric` left the exact check.json and
    check.txt of the run beside a report that states the numeric check."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    assert json.loads((run / "check.json").read_text())["method"] == "exact"
    assert main(["evaluate", str(run), "--check-method", "numeric"]) == 0
    assert json.loads((run / "check.json").read_text())["method"] == "numeric"
    assert (run / "check.txt").read_text().splitlines()[1].startswith("method: numeric")
    assert "method: numeric" in (run / "report.md").read_text()


def _other_layer(state):
    i = next(i for i, line in enumerate(state["architecture"]) if line.endswith(": SiLU"))
    state["architecture"][i] = state["architecture"][i].replace("SiLU", "ReLU")
    return ["was saved by a model of another architecture: ", "ReLU' in the file", "SiLU' here"]


def _other_option(state):
    assert state["options"]["beta"] == 1.0
    state["options"]["beta"] = 4.0
    return ["was saved by a model built with other options: beta 4.0 -> 1.0"]


@pytest.mark.parametrize("alter", [_other_layer, _other_option])
def test_a_model_saved_by_another_build_is_refused_before_anything_is_written(
    tmp_path, data, capsys, alter
):
    """The same settings but other layers (as a model built by another conceptid whose net
    differs only where the tensors do not show it), or the same layers built with another
    constructor option (a method that sets another loss weight): refused, naming the layer or
    the option, with the way out; the file is left as it was."""
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--methods", "pooled", "--quiet"]
    assert main([*args, "--epochs", "2"]) == 0
    final = run / "models" / "pooled" / "final.pt"
    state = torch.load(final, weights_only=False)
    named = alter(state)
    torch.save(state, final)
    saved = final.read_bytes()
    err = one_error([*args, "--epochs", "2"], capsys)
    assert all(part in err for part in named) and f"{final} " in err and "--retrain" in err, err
    assert final.read_bytes() == saved


def test_the_report_states_the_settings_stored_with_the_models(tmp_path, data, monkeypatch):
    run = tmp_path / "run"
    common = ["train", str(data), "--out", str(run), "--quiet"]
    assert main([*common, "--methods", "pooled", "--epochs", "2"]) == 0
    assert main([*common, "--methods", "context-module", "--epochs", "3", "--seed", "1"]) == 0
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] is None and metrics["seed"] is None  # they differ: no one value
    assert metrics["batch_size"] == 128 and metrics["device"] == "cpu"
    trained = {k: (m["training"]["epochs"], m["training"]["seed"])
               for k, m in metrics["methods"].items()}  # fmt: skip
    assert trained == {"pooled": (2, 0), "context-module": (3, 1)}
    report = (run / "report.md").read_text()
    assert "training settings per method in the table below" in report
    assert f"| {pipeline.METHODS['context-module'].label} | 1 | 3 | 128 |" in report
    reproduce = report.split("## Reproduce")[1]
    assert "--methods pooled --seed 0 --epochs 2" in reproduce
    assert "--methods context-module --seed 1 --epochs 3" in reproduce
    assert f"conceptid train {data} --out {run} --methods pooled" in reproduce
    assert f"conceptid evaluate {run} --data {data}" in reproduce
    # training a model again removes the evaluation that described the old one
    assert main([*common, "--methods", "pooled", "--epochs", "3", "--retrain"]) == 0
    assert not (run / "metrics.json").exists() and not (run / "report.md").exists()
    assert not (run / "figures").exists()
    assert sorted(p.name for p in (run / "models").iterdir()) == ["context-module", "pooled"]


def test_a_run_states_what_it_reused(reference):
    metrics = json.loads((reference / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["restarts"], metrics["seed"]) == (3, 2, 0)
    for m in metrics["methods"].values():
        assert (m["training"]["epochs"], m["training"]["restarts"]) == (3, 2)
    assert "3 epochs, batch 128, lr 0.002, 2 restart(s)" in (reference / "report.md").read_text()


# -- checkpoints ----------------------------------------------------------------------------------


def _interrupt_after_saves(monkeypatch, n: int) -> None:
    real, saves = trainer.save_checkpoint, []

    def save(path, state):
        real(path, state)
        saves.append(path)
        if len(saves) == n:
            raise _Interrupted

    monkeypatch.setattr(trainer, "save_checkpoint", save)


def test_a_checkpoint_of_another_dataset_is_refused_naming_it(tmp_path, data, capsys, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after_saves(m, 1)
        with pytest.raises(_Interrupted):
            main(["train", str(data), "--out", str(run), "--methods", "pooled", "--quiet"])
    ckpt = run / "models" / "pooled" / "checkpoint.pt"
    saved = ckpt.read_bytes()
    for extra in (["--seed", "5", "--m", "3"], ["--m", "4"]):  # same shapes; other shapes
        other = tmp_path / f"other{extra[1]}"
        sim = ["simulate", "--preset", "random", "--n-per-context", "40", "--nuisance-dim", "1",
               "--quiet"]  # fmt: skip
        assert main([*sim, *extra, "--out", str(other)]) == 0
        # the command line refuses it by the dataset the interrupted train recorded first
        err = one_error(["train", str(other), "--out", str(run), "--methods", "pooled"], capsys)
        assert f"{run} was trained on another dataset, {data.resolve()}" in err, err
        assert ckpt.read_bytes() == saved and not (ckpt.parent / "final.pt").exists()
        # and the checkpoint itself, where nothing checks the record (the Python API)
        with pytest.raises(CheckpointError) as got:
            training.train("pooled", load_dataset(other), run, progress=False)
        assert f"{ckpt} belongs to another training" in str(got.value)
        assert "dataset " in str(got.value)
        assert ckpt.read_bytes() == saved and not (ckpt.parent / "final.pt").exists()


def test_train_refuses_what_it_would_refuse_before_writing_anything(tmp_path, data, capsys,
                                                                    monkeypatch):  # fmt: skip
    """Everything train would refuse about the files a run holds stops the command before
    the first fit and before the dataset is recorded: a checkpoint of another dataset (left by
    the Python API, which records no dataset); a final.pt of an older release (no architecture
    or options recorded) whose tensors do not fit, behind a method that would train first; a
    directory that is not a run, whatever it holds. The right dataset still resumes."""
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after_saves(m, 1)
        with pytest.raises(_Interrupted):
            training.train("pooled", load_dataset(data), run, progress=False)
    marker = (run / "run.json").read_bytes()
    other = tmp_path / "other"
    sim = ["simulate", "--preset", "random", "--n-per-context", "40", "--m", "3",
           "--nuisance-dim", "1", "--seed", "5", "--quiet", "--out", str(other)]  # fmt: skip
    assert main(sim) == 0
    err = one_error(["train", str(other), "--out", str(run), "--methods", "pooled"], capsys)
    assert "checkpoint.pt belongs to another training" in err and "--retrain" in err
    assert (run / "run.json").read_bytes() == marker  # no dataset recorded
    assert main(["train", str(data), "--out", str(run), "--methods", "pooled", "--quiet"]) == 0
    assert json.loads((run / "run.json").read_text())["data"]["path"] == str(data.resolve())

    legacy = tmp_path / "legacy"
    assert main(["train", str(data), "--out", str(legacy), "--methods", "pooled", "--epochs", "1",
                 "--quiet"]) == 0  # fmt: skip
    final = legacy / "models" / "pooled" / "final.pt"
    state = torch.load(final, weights_only=False)
    del state["architecture"], state["options"]
    key = next(k for k, v in state["model"].items() if v.dim() == 2)
    state["model"][key] = torch.zeros(
        state["model"][key].shape[0] + 1, state["model"][key].shape[1]
    )
    torch.save(state, final)
    before = {p: p.read_bytes() for p in legacy.rglob("*") if p.is_file()}
    err = one_error(["train", str(data), "--out", str(legacy), "--methods", "context-module,pooled",
                     "--epochs", "1"], capsys)  # fmt: skip
    assert f"{final} does not fit this model" in err and "--retrain" in err
    assert {p: p.read_bytes() for p in legacy.rglob("*") if p.is_file()} == before

    mine = tmp_path / "mine"
    (mine / "models" / "pooled").mkdir(parents=True)
    (mine / "models" / "pooled" / "final.pt").write_bytes(final.read_bytes())
    err = one_error(["train", str(data), "--out", str(mine), "--methods", "pooled"], capsys)
    assert f"refusing to write into {mine}: not a conceptid run directory" in err, err
    assert not (mine / "run.json").exists()


# -- generate ------------------------------------------------------------------------------------


def test_only_a_model_that_can_intervene_generates_under_targets(tmp_path, capsys):
    from conceptid.models.estimators import IVAE, ContextModuleVAE, PooledVAE, TheoremMatchedVAE
    from conceptid.models.mle import LatentFlowMLE, ManifoldMLE

    assert ContextModuleVAE((4,), (1, 1), 0).can_intervene
    assert not ContextModuleVAE((4,), (1, 1), 0, use_labels=False).can_intervene
    assert not PooledVAE((4,), 2).can_intervene and not IVAE((4,), 2, 3).can_intervene
    assert TheoremMatchedVAE.can_intervene and ManifoldMLE.can_intervene
    assert LatentFlowMLE.can_intervene

    quad, run = tmp_path / "quad", tmp_path / "run"
    assert main(["simulate", "--preset", "quad", "--image-size", "32", "--n-per-context", "2",
                 "--out", str(quad), "--quiet"]) == 0  # fmt: skip
    methods = "context-module,pooled,ablation,ivae"
    assert main(["train", str(quad), "--out", str(run), "--methods", methods, "--epochs", "1",
                 "--quiet"]) == 0  # fmt: skip
    for method, label in [("pooled", "pooled VAE"), ("ablation", "labels ignored"),
                          ("ivae", "iVAE")]:  # fmt: skip
        out = tmp_path / f"{method}.npy"
        err = one_error(["generate", str(run / "models" / method), "--data", str(quad),
                         "--targets", "size,orientation", "--out", str(out)], capsys)  # fmt: skip
        assert f"{method} (" in err and label in err and "cannot generate under" in err
        assert "pooled law of the training contexts" in err
        assert not out.exists()
        # samples of the pooled law it learned are what such a model can give, and say so
        assert main(["generate", str(run / "models" / method), "--data", str(quad), "--n", "3",
                     "--out", str(out)]) == 0  # fmt: skip
        assert "3 samples of the pooled training law" in capsys.readouterr().out
        assert np.load(out).shape == (3, 32, 32, 3)
    # images come back in the data's units: uint8 (N, H, W, 3), round(255 * image)
    out = tmp_path / "do.npy"
    cm = str(run / "models" / "context-module")
    assert main(["generate", cm, "--data", str(quad), "--targets", "size,orientation", "--n", "5",
                 "--seed", "3", "--out", str(out)]) == 0  # fmt: skip
    x = np.load(out)
    ds = load_dataset(quad)
    assert x.dtype == ds.x.dtype == np.uint8 and x.shape == (5, *ds.x.shape[1:]) == (5, 32, 32, 3)
    model, _ = pipeline.load_trained(run / "models" / "context-module" / "final.pt", ds)
    mask = torch.zeros(5, len(ds.card["concept_names"]), dtype=torch.bool)
    mask[:, [ds.card["concept_names"].index(c) for c in ("size", "orientation")]] = True
    with torch.no_grad():
        raw = model.generate(mask, generator=torch.Generator().manual_seed(3)).numpy()
    assert np.array_equal(
        x, np.rint(np.clip(raw, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    )
    png = tmp_path / "do.png"
    assert main(["generate", str(run / "models" / "context-module"), "--data", str(quad),
                 "--targets", "size", "--n", "4", "--out", str(png)]) == 0  # fmt: skip
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sample_decides_from_the_estimator_not_its_name():
    class Silent(torch.nn.Module):
        can_intervene = False

        def generate(self, targets, generator=None):  # pragma: no cover - never reached
            raise AssertionError("generated under targets")

    ds = type("D", (), {"card": {"concept_names": ["a", "b"]}, "x": np.zeros((1, 2), "f4")})()
    model = pipeline.Trained(method="my-estimator", model=Silent(),
                             settings={"method": "my-estimator"},
                             normaliser=pipeline.Normaliser(None, None))  # fmt: skip
    with pytest.raises(pipeline.PipelineError, match="my-estimator .*cannot generate under"):
        pipeline.sample(model, ds, ["a"], 2)


# -- training faults ------------------------------------------------------------------------------


def test_a_nan_loss_stops_train_with_one_line_and_keeps_the_checkpoint(
    tmp_path, data, capsys, monkeypatch
):  # fmt: skip
    from conceptid.models.estimators import PooledVAE

    real, calls = PooledVAE.loss, {"n": 0}
    per_epoch = -(-int(load_dataset(data).mask("train").sum()) // 128)

    def loss(self, batch, generator=None):
        value, logs = real(self, batch, generator)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 2 * per_epoch + 1:  # the first batch of the third epoch
                value = value * float("inf")
        return value, logs

    monkeypatch.setattr(PooledVAE, "loss", loss)
    run = tmp_path / "run"
    err = one_error(["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs",
                     "5", "--quiet"], capsys)  # fmt: skip
    ckpt = run / "models" / "pooled" / "checkpoint.pt"
    assert "training loss became inf at epoch 3, batch 1" in err and str(ckpt) in err, err
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # the second epoch, finished
    assert not (ckpt.parent / "final.pt").exists()


def test_an_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after_saves(m, 4)  # pooled, restart 1, first epoch
        with pytest.raises(_Interrupted):
            main(["run", *DATA, *TRAIN, "--out", str(run)])
    assert (run / "models" / "pooled" / "checkpoint.pt.r1").is_file()
    assert main(["run", *DATA, *TRAIN, "--out", str(run)]) == 0
    assert (run / "metrics.json").read_bytes() == (reference / "metrics.json").read_bytes()


# -- kill at random moments -----------------------------------------------------------------------


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "conceptid.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _kill_at(proc: subprocess.Popen, delay: float, ready=lambda: True) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after ``ready()`` holds; False if it ended first."""
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
    return sa["key"] == sb["key"] and all(torch.equal(sa["model"][k], sb["model"][k])
                                          for k in sa["model"])  # fmt: skip


def _complete_or_absent(run: Path, reference: Path) -> None:
    """Every file of a killed run is whole and valid, or absent (a hidden temporary is not yet
    a file of the run: the next write of its target removes it)."""
    ds = None
    for p in sorted(run.rglob("*")):
        rel = p.relative_to(run)
        if p.is_dir() or TEMPORARY.match(p.name):
            continue
        if rel.parts[0] == "data":
            ds = load_dataset(run / "data")
            assert ds.card["content_hash"] == load_dataset(reference / "data").card["content_hash"]
        elif rel == Path("run.json"):
            assert is_run_dir(run)
        elif rel.parts[0] == "models" and p.name == "final.pt":
            pipeline.load_trained(p, ds or load_dataset(reference / "data"))
            assert _same_weights(p, reference / rel), rel
        elif rel.parts[0] == "models":
            state = trainer.read_checkpoint(p)  # a checkpoint: whole, and keyed by its settings
            assert re.fullmatch(r"checkpoint\.pt(\.r1)?", p.name), rel
            assert state["key"] == settings_key(state["settings"])
        elif p.suffix == ".json":
            json.loads(p.read_text())
            if p.name == "metrics.json":  # written once, at the end, from the finished models
                assert p.read_bytes() == (reference / rel).read_bytes()
        elif p.suffix == ".png":
            raw = p.read_bytes()
            assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[-8:-4] == b"IEND", rel
        elif p.suffix in (".md", ".txt"):
            assert p.stat().st_size > 0
        else:
            raise AssertionError(f"unexpected file {rel}")


def _no_temporaries(d: Path) -> None:
    assert not [p for p in d.rglob("*") if TEMPORARY.match(p.name)], listing(d)


def test_kill_simulate_train_and_run_at_random_moments(reference, data, tmp_path):
    rng = np.random.default_rng(11)
    trials = int(os.environ.get("CONCEPTID_FAULT_TRIALS", "1"))
    content = load_dataset(data).card["content_hash"]
    sim = ["simulate", "--preset", "random", "--m", "3", "--nuisance-dim", "1",
           "--n-per-context", "40", "--quiet"]  # fmt: skip
    killed = 0
    for t in range(2 * trials):
        out = tmp_path / f"sim{t}" / "d"
        killed += _kill_at(_spawn([*sim, "--out", str(out)]), rng.uniform(0.1, 1.5))
        if out.exists():
            assert load_dataset(out).card["content_hash"] == content
        else:
            assert main([*sim, "--out", str(out)]) == 0
        assert load_dataset(out).card["content_hash"] == content
        _no_temporaries(out.parent)

    for t in range(trials):
        run = tmp_path / f"train{t}"
        args = ["train", str(data), "--out", str(run), *TRAIN]
        training = lambda run=run: any((run / "models").glob("*/checkpoint.pt*"))  # noqa: E731
        killed += _kill_at(_spawn(args), rng.uniform(0.0, 0.6), training)
        if run.exists():
            _complete_or_absent(run, reference)
        assert main(args) == 0
        for method in ("pooled", "latent-flow"):
            final = run / "models" / method / "final.pt"
            assert _same_weights(final, reference / "models" / method / "final.pt")
            assert [p.name for p in final.parent.iterdir()] == ["final.pt"]

    for t in range(trials):
        run = tmp_path / f"run{t}"
        args = ["run", *DATA, *TRAIN, "--out", str(run)]
        training = lambda run=run: any((run / "models").glob("*/*"))  # noqa: E731
        killed += _kill_at(_spawn(args), rng.uniform(0.0, 1.5), training)
        if run.exists():
            _complete_or_absent(run, reference)
        assert main(args) == 0
        assert (run / "metrics.json").read_bytes() == (reference / "metrics.json").read_bytes()
        _no_temporaries(run)
    assert killed >= trials  # the kills happened while the commands ran


def test_a_run_on_block_concepts_evaluates_every_method(tmp_path):
    """Concepts of two coordinates each: the pooled VAE (learned dimensions assigned to the
    concepts by the Hungarian method) and the two-step fit (its own blocks) are both trained
    and evaluated, and the report gives each an R^2 per concept."""
    out = tmp_path / "run"
    args = ["run", "--preset", "random", "--preset-arg", "m=3", "--preset-arg", "block_size=2",
            "--n-per-context", "60", "--epochs", "2", "--methods", "pooled,latent-flow",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for method in ("pooled", "latent-flow"):
        r2 = metrics["methods"][method]["r2"]
        assert len(r2) == 3 and all(np.isfinite(r2))
        # MCC pairs single coordinates: not invariant within a block, so not reported
        assert metrics["methods"][method]["mcc"] is None


def test_the_report_reads_every_swd_against_its_floors(reference):
    """metrics.json holds the floors of the run's own test rows, the report states them, and it
    warns that 10 test rows a context (40 // 4) are too few for a ratio to mean much."""
    metrics = json.loads((reference / "metrics.json").read_text())
    floors = metrics["floors"]
    assert floors["test_rows"] == 10
    concept, composition = floors["concept"], floors["composition"]
    assert 0 < concept["same"] < concept["observational"]
    assert 0 < composition["same"] < composition["observational"]
    assert composition["oracle_sem"] > 0  # a linear Gaussian SEM with hard interventions
    report = (reference / "report.md").read_text()
    assert f"composition SWD same-law {composition['same']:.4f}" in report
    assert "The test split holds 10 rows in its smallest context: below 500" in report


def test_a_run_without_ground_truth_has_no_floors(tmp_path):
    from conceptid.simulations import Dataset

    rng = np.random.default_rng(0)
    targets = [[], ["a"], ["b"]] * 40
    ds = Dataset.from_arrays(rng.standard_normal((120, 4)), targets, ["a", "b"], seed=0)
    data = ds.save(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["run", "--data", str(data), "--epochs", "1", "--methods", "pooled",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    assert json.loads((out / "metrics.json").read_text())["floors"] is None
    assert "Floors on the same test rows" not in (out / "report.md").read_text()
    # found by review: without ground truth (no floors) the report said nothing of its few
    # test rows, and compared the ratio with the paper's quad figure
    report = (out / "report.md").read_text()
    assert "The test split holds 6 rows in its smallest context: below 500" in report
    assert "paper" not in report


def test_the_papers_figure_is_quoted_for_the_quad_scene_only():
    from conceptid.report import _paper_figure

    assert "0.6x" in _paper_figure({"preset": "quad", "preset_args": {}}, "pooled")
    assert "0.33x" in _paper_figure({"preset": "quad", "preset_args": {"dependent": False}},
                                    "pooled")  # fmt: skip
    for spec in (
        None,
        {"preset": "random"},
        {"preset": "quad", "preset_args": {"identifiable": True}},
    ):
        assert _paper_figure(spec, "pooled") == ""
    assert _paper_figure({"preset": "quad"}, "context-flow-ablation") == ""


def test_the_report_says_when_the_training_contexts_could_not_be_noise_checked(
    reference, tmp_path, monkeypatch
):
    """Found by review: a noise check with no testable training context (too few test rows
    for the coordinates) and a tested held-out one was reported for the held-out part alone."""
    from conceptid import evaluation

    real = evaluation.noise_check

    def held_out_only(model, split, contexts, names, **kw):
        held = set(contexts) - {names.index(n) for n in names if "," not in n}
        return real(model, split, contexts, names, **kw) if held else None

    monkeypatch.setattr(evaluation, "noise_check", held_out_only)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    assert main(["evaluate", str(run)]) == 0
    nc = json.loads((run / "metrics.json").read_text())["methods"]["latent-flow"]["noise_check"]
    assert nc["training"] is None and nc["held_out"]["contexts"]
    report = (run / "report.md").read_text()
    assert "training contexts not tested (too few test rows" in report
    assert "held-out compositions p = " in report


def test_reuse_removes_only_checkpoints_its_restarts_write(tmp_path, data, capsys, monkeypatch):
    # found by review: a plain rerun that reused the model deleted a user's checkpoint.pt.r3,
    # which a run of one restart never writes
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    folder = run / "models" / "pooled"
    (folder / "checkpoint.pt.r3").write_text("mine")
    (folder / "checkpoint.pt.r0").write_text("mine too")  # no restart's name (restart 0's is
    (folder / "checkpoint.pt.r00").write_text("and mine")  # checkpoint.pt)
    (folder / "checkpoint.pt").write_text("left by a run killed after final.pt")
    assert main(args) == 0 and "pooled: reused" in capsys.readouterr().out
    assert (folder / "checkpoint.pt.r3").read_text() == "mine"
    assert (folder / "checkpoint.pt.r0").read_text() == "mine too"
    assert (folder / "checkpoint.pt.r00").read_text() == "and mine"
    assert not (folder / "checkpoint.pt").exists()  # restart 0's: this run's own


def test_a_huge_number_of_restarts_costs_no_loop_over_them(tmp_path, data, capsys, monkeypatch):
    # found by review: --restarts 1000000000 hung before writing anything (a loop over every
    # restart's checkpoint name); the checks now read the folder instead
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
                 "--quiet"]) == 0  # fmt: skip

    def stop(*a, **k):
        raise KeyboardInterrupt  # the fit itself would take the restarts asked for

    monkeypatch.setattr(training, "fit_restarts", stop)
    t0 = time.perf_counter()
    rc = main(["train", str(data), "--out", str(run), "--methods", "pooled", "--epochs", "1",
               "--restarts", str(10**9), "--retrain", "--quiet"])  # fmt: skip
    assert rc == 130 and time.perf_counter() - t0 < 30


def test_a_saved_model_whose_settings_were_edited_is_not_trusted(tmp_path, data, capsys):
    # found by review: epochs changed from 1 to 2 in final.pt with the old key kept was reused
    # by --epochs 1 as "the same settings", and refused for --epochs 2 with an empty difference
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--methods", "pooled", "--quiet"]
    assert main([*args, "--epochs", "1"]) == 0
    final = run / "models" / "pooled" / "final.pt"
    state = torch.load(final, weights_only=False)
    state["settings"]["epochs"] = 2  # the key is the one of epochs 1
    torch.save(state, final)
    for epochs in ("1", "2"):
        err = one_error([*args, "--epochs", epochs], capsys)
        assert "records settings that do not match their own key" in err
    with pytest.raises(CheckpointError, match="do not match their own key"):
        trainer.read_checkpoint(final)
