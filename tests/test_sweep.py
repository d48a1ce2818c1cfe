"""Sweeps on Dask: the grid, content keys, resumption, failures, a killed worker, the summary."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import distributed
import numpy as np
import pytest

from conceptid.sweep import Sweep, SweepError, run_sweep, summary_markdown

FIT = "conceptid.sweep:fit_cell"


def _toy(**over) -> dict:
    d = {
        "name": "toy",
        "benchmarks": [{"label": "chain", "spec": {"preset": "chain"}}],
        "spec_grid": {"n_train": [10, 100]},
        "methods": ["pooled"],
        "params": {"sleep": [0.05]},
        "seeds": [0, 1, 2],
        "task": "conceptid.sweep:toy_cell",
    }
    return d | over


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster on loopback: two worker processes, one thread each."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster, distributed.Client(cluster) as c:  # fmt: skip
        yield c


def _results(out):
    return sorted((out / "cells").glob("*.json"))


def test_the_grid_and_its_keys():
    sw = Sweep.from_dict(_toy())
    cells = sw.cells()
    assert len(cells) == 1 * 2 * 1 * 1 * 3
    assert len({c.key for c in cells}) == len(cells)
    assert {c.spec["n_train"] for c in cells} == {10, 100}
    assert all(c.spec["seed"] == c.seed for c in cells)
    # a key depends on what determines the cell, not on its label or thread count
    again = Sweep.from_dict(
        _toy(threads=2, benchmarks=[{"label": "x", "spec": {"preset": "chain"}}])
    )
    assert [c.key for c in again.cells()] == [c.key for c in cells]
    other = Sweep.from_dict(_toy(params={"sleep": [0.06]}))
    assert not {c.key for c in other.cells()} & {c.key for c in cells}


@pytest.mark.parametrize(
    "over, words",
    [
        ({"methods": []}, "methods must be a non-empty list"),
        ({"seeds": [0, 0]}, "seeds repeat"),
        ({"seeds": [-1]}, "seed must be a non-negative integer"),
        ({"spec_grid": {"n_train": 5}}, "spec_grid.n_train must be a non-empty list"),
        ({"colour": 1}, "unknown sweep field"),
        ({"benchmarks": [{"spec": {"preset": "nope"}}]}, "benchmark 'b0'"),
        ({"x": "lr"}, "x 'lr' is not an axis"),
        ({"task": "conceptid.sweep:fit_cell", "methods": ["magic"]}, "unknown method"),
        ({"task": "conceptid.sweep:fit_cell", "methods": ["pooled"]}, "unknown training param"),
        ({"retries": -1}, "retries must be a non-negative integer"),
        ({"task": "nomod:fn"}, "cannot import the task 'nomod:fn'"),
        ({"task": FIT, "params": {"epochs": [5, 0]}},
         r"params\.epochs must be a positive integer, got 0"),
        ({"task": FIT, "params": {"lr": [0]}}, r"params\.lr must be a positive finite number"),
        ({"task": FIT, "params": {}, "spec_grid": {"n_train": [100, 0]}},
         "benchmark 'chain': n_train must be a positive integer, got 0"),
        # the type of every field
        ({"benchmarks": [{"spec": 5}]}, r"benchmarks\[0\]\.spec must be an object .*got int"),
        ({"benchmarks": [{"spec": "ab"}]}, r"benchmarks\[0\]\.spec must be an object .*got str"),
        ({"benchmarks": [{"spec": None}]}, r"benchmarks\[0\]\.spec must be an object"),
        ({"benchmarks": [{"spec": [["preset", "chain"]]}]},
         r"benchmarks\[0\]\.spec must be an object .*got list"),
        ({"benchmarks": [{"label": {}, "spec": {"preset": "chain"}}]},
         r"benchmarks\[0\]\.label must be a string or a number, got dict"),
        ({"benchmarks": [{"label": True, "spec": {"preset": "chain"}}]},
         r"benchmarks\[0\]\.label must be a string or a number, got bool"),
        ({"benchmarks": [{"label": [500], "spec": {"preset": "chain"}}]},
         r"benchmarks\[0\]\.label must be a string or a number, got list"),
        ({"benchmarks": [{"label": 500, "spec": {"preset": "chain"}},
                         {"label": "500", "spec": {"preset": "random"}}]},
         "benchmark label '500' appears twice"),
        ({"params": [1]}, "params must be an object of lists, got list"),
        ({"params": "ab"}, "params must be an object of lists, got str"),
        ({"spec_grid": [1]}, "spec_grid must be an object of lists, got list"),
        ({"spec_grid": "ab"}, "spec_grid must be an object of lists, got str"),
        ({"x": ["n_train"]}, r"x must be the name of a spec_grid or params axis .*\['n_train'\]"),
        ({"x": {}}, r"x must be the name of a spec_grid or params axis .*got \{\}"),
        ({"methods": [["pooled"]]}, r"methods must be method names \(strings\), got \['pooled'\]"),
        ({"methods": [{}]}, r"methods must be method names \(strings\), got \{\}"),
        ({"name": 5}, "name must be a string, got int"),
        ({"task": ""}, "task must be 'module:function'.*got ''"),
        ({"task": ":"}, "task must be 'module:function'.*got ':'"),
        ({"task": "."}, r"task must be 'module:function'.*got '\.'"),
        ({"task": ".x:y"}, r"task must be 'module:function'.*got '\.x:y'"),
        ({"task": 5}, "task must be 'module:function'.*got 5"),
        # a grid that the summary could not tell apart
        ({"params": {"method": [1]}}, r"grid axis name\(s\) \['method'\] clash"),
        ({"params": {"n_train": [1]}}, r"grid axis name\(s\) \['n_train'\] clash"),
        # numbers out of range
        ({"seeds": [-5]}, "seed must be a non-negative integer"),
        ({"threads": 10**30}, "threads must be at most 1024"),
        ({"threads": 1e30}, "threads must be a positive integer"),
        ({"retries": 10**30}, "retries must be at most 100"),
        ({"retries": 1e30}, "retries must be a non-negative integer"),
        # sizes beyond memory, refused before a model is built
        ({"benchmarks": [{"spec": {"preset": "random", "preset_args": {"m": 100000}}}]},
         "benchmark 'b0': the cell b0 .*needs about .* GiB, more than"),
        ({"benchmarks": [{"spec": {"preset": "random", "preset_args": {"nuisance_dim": 10**7}}}]},
         "needs about .* GiB, more than"),
        ({"benchmarks": [{"spec": {"preset": "random", "preset_args": {"p": 10**12}}}]},
         "needs about .* GiB, more than"),
        # the default task's methods against the data: named as the sweep file's field
        ({"task": FIT, "params": {}, "spec_grid": {},
          "benchmarks": [{"spec": {"preset": "quad"}}], "methods": ["latent-flow"]},
         "the sweep's methods: latent-flow needs vector observations"),
        ({"task": FIT, "params": {}, "spec_grid": {}, "methods": ["pooled"],
          "benchmarks": [{"spec": {"preset": "quad", "preset_args": {"image_size": 48}}}]},
         "image size 48 is not supported"),
        # fewer training rows than the model's latent needs (found by review: such a cell
        # failed at run time, after its retries): 6 contexts of 1 row, a latent of 5 + 2
        ({"task": FIT, "params": {}, "spec_grid": {"n_train": [1, 2]}, "methods": ["context-flow"],
          "benchmarks": [{"spec": {"preset": "chain", "preset_args": {"nuisance_dim": 2}}}]},
         "method context-flow, n_train=1: the training data has 6 rows; LatentFlowMLE needs at "
         "least 8"),
    ],
)  # fmt: skip
def test_bad_sweeps_are_refused_with_one_line(over, words):
    with pytest.raises(SweepError, match=words):
        Sweep.from_dict(_toy(**over))


def test_checking_a_large_sweep_shows_progress(monkeypatch):
    # found by review: 200000 seeds were checked for minutes without a word
    import tqdm

    seen = []

    class Recording(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            seen.append((kwargs["total"], kwargs["desc"]))
            super().__init__(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(tqdm, "tqdm", Recording)
    d = _toy(seeds=list(range(7)))
    shown = Sweep.from_dict(d, progress=True)
    assert seen == [(2 * 7, "checking the sweep")]  # two n_train values, seven seeds
    assert shown.cells() == Sweep.from_dict(d).cells() and len(seen) == 1


def test_counts_written_as_json_floats_are_counts():
    sweep = Sweep.from_dict(_toy(task=FIT, params={"epochs": [1e3, 256.0]}))
    assert {c.params["epochs"] for c in sweep.cells()} == {1000, 256}
    with pytest.raises(SweepError, match=r"params\.epochs must be a positive integer"):
        Sweep.from_dict(_toy(task=FIT, params={"epochs": [2.5]}))


def test_a_missing_or_broken_sweep_file(tmp_path):
    with pytest.raises(SweepError, match="no sweep file"):
        Sweep.from_json(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SweepError, match="not a readable JSON sweep"):
        Sweep.from_json(tmp_path / "bad.json")
    (tmp_path / "twice.json").write_text('{"seeds": [0], "seeds": [1]}')
    with pytest.raises(SweepError, match="gives the key 'seeds' twice"):
        Sweep.from_json(tmp_path / "twice.json")


def test_an_unusable_scheduler_leaves_a_sweep_directory_as_it_was(tmp_path, client, monkeypatch):
    """A malformed address, or a scheduler nobody listens at, is refused before anything is
    written: not the marker, not cells/, not a summary."""
    monkeypatch.setattr("conceptid.sweep._CONNECT_TIMEOUT", "1s")
    out = tmp_path / "s"
    run_sweep(Sweep.from_dict(_toy(seeds=[0])), out, client=client, progress=False)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    grown = Sweep.from_dict(_toy(seeds=[0, 1]))  # new cells, so it must connect
    with pytest.raises(SweepError, match="'notanaddress' is not a Dask scheduler address"):
        run_sweep(grown, out, scheduler="notanaddress", progress=False)
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"):
        run_sweep(grown, out, scheduler="tcp://127.0.0.1:1", progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"):
        run_sweep(grown, tmp_path / "new", scheduler="tcp://127.0.0.1:1", progress=False)
    assert not (tmp_path / "new").exists()


def test_a_foreign_directory_is_refused_untouched(tmp_path, client):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not a sweep directory"):
        run_sweep(Sweep.from_dict(_toy()), tmp_path, client=client, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_run_resume_and_summary(tmp_path, client):
    sw = Sweep.from_dict(_toy())
    out = tmp_path / "s"
    res = run_sweep(sw, out, client=client, progress=False)
    assert (res.cells, res.skipped, res.ran, res.failed) == (6, 0, 6, [])
    files = _results(out)
    assert len(files) == 6
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    # the summary: mean, standard error and per-seed values, exact for the toy's formula
    row = next(r for r in res.rows if r["metric"] == "score" and r["n_train"] == 100)
    per = [1 - 1 / 10 + 0.01 * s for s in (0, 1, 2)]
    assert row["per_seed"] == pytest.approx(per)
    assert row["mean"] == pytest.approx(np.mean(per))
    assert row["se"] == pytest.approx(np.std(per, ddof=1) / np.sqrt(3))
    assert (out / "summary.csv").exists() and (out / "summary.png").stat().st_size > 0
    assert "| chain | 100 | pooled | 0.05 |" in (out / "summary.md").read_text()
    # a rerun does no work and rewrites no cell
    again = run_sweep(sw, out, client=client, progress=False)
    assert (again.skipped, again.ran) == (6, 0)
    assert {f: f.stat().st_mtime_ns for f in _results(out)} == mtimes
    # a grown sweep runs only its new cells
    grown = Sweep.from_dict(_toy(seeds=[0, 1, 2, 3]))
    more = run_sweep(grown, out, client=client, progress=False)
    assert (more.skipped, more.ran) == (6, 2)


def test_one_seed_has_no_standard_error_in_either_summary(tmp_path, client):
    # found by review: summary.csv wrote 0.0 where summary.md said n/a
    out = tmp_path / "one"
    res = run_sweep(Sweep.from_dict(_toy(seeds=[4])), out, client=client, progress=False)
    assert res.rows and all(r["se"] is None and r["n"] == 1 for r in res.rows)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert rows and all(r["se"] == "" and r["n"] == "1" for r in rows)
    assert "+- n/a [" in (out / "summary.md").read_text()


def test_a_failing_cell_is_retried_then_reported_without_stopping_the_others(tmp_path, client):
    sw = Sweep.from_dict(_toy(params={"sleep": [0.01], "fail_seeds": [[1]]}, retries=1))
    out = tmp_path / "f"
    res = run_sweep(sw, out, client=client, progress=False)
    assert len(res.failed) == 2 and res.ran == 4 and not res.complete
    failed = sorted((out / "cells").glob("*.failed.json"))
    assert len(failed) == 2
    rec = json.loads(failed[0].read_text())
    assert "toy cell told to fail (seed 1)" in rec["error"] and rec["cell"]["seed"] == 1
    # the summary covers the finished seeds only, and the markdown says so (found by review:
    # it read "3 seeds" with a standard error of 0 from each row's two values... or one)
    assert all(r["seeds"] == [0, 2] for r in res.rows)
    md = (out / "summary.md").read_text()
    assert "(seeds 0, 2 only)" in md
    assert "2 cell(s) without a result (failed, see cells/*.failed.json, or not run)" in md
    assert md.count("seed 1)") == 2  # each unfinished cell listed, by its seed
    # a rerun retries the failed cells only
    again = run_sweep(sw, out, client=client, progress=False)
    assert (again.skipped, len(again.failed)) == (4, 2)


def test_a_killed_worker_loses_nothing(tmp_path):
    """Kill one of two workers while cells run: every cell is still present exactly once."""
    sw = Sweep.from_dict(_toy(spec_grid={"n_train": [10, 100, 1000, 10000]},
                              params={"sleep": [0.6]}))  # fmt: skip
    out = tmp_path / "k"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster, distributed.Client(cluster) as c:  # fmt: skip
        pids = c.run(os.getpid)
        killed = []

        def kill_one():
            deadline = time.time() + 60
            while time.time() < deadline and not killed:
                if any(c.processing().values()) and len(_results(out)) >= 1:
                    pid = sorted(pids.values())[0]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                time.sleep(0.05)

        t = threading.Thread(target=kill_one)
        t.start()
        res = run_sweep(sw, out, client=c, progress=False)
        t.join()
        survivors = set(c.run(os.getpid).values())
    assert killed and killed[0] not in survivors
    assert res.failed == [] and res.ran == 12
    keys = sorted(f.name for f in _results(out))
    assert keys == sorted(f"{cell.key}.json" for cell in sw.cells())
    assert not list((out / "cells").glob(".*partial*"))
    assert all(r["n"] == 3 for r in res.rows)


def test_the_default_task_fits_and_scores_one_cell(tmp_path):
    """fit_cell in-process: the pipeline's evaluation plus the NLL gap, in the cell's own run
    directory; run again, it reuses the trained model (same settings) and scores the same."""
    from conceptid.sweep import fit_cell

    sw = Sweep.from_dict({
        "benchmarks": [{"label": "L1", "spec": {
            "preset": "random", "n_train": 300, "n_val": 100, "n_test": 200,
            "preset_args": {"m": 3, "p": 6, "mixing": "linear"}}}],
        "methods": ["latent-flow"], "params": {"epochs": [3]}, "seeds": [0],
    })  # fmt: skip
    (cell,) = sw.cells()
    res = fit_cell(cell.to_dict() | {"root": str(tmp_path)})
    assert len(res["r2"]) == 3 and res["min_r2"] == min(res["r2"])
    assert np.isfinite(res["nll_gap"]) and res["composition_swd"] > 0
    assert (tmp_path / "cells" / cell.key / "models" / "latent-flow" / "final.pt").exists()
    again = fit_cell(cell.to_dict() | {"root": str(tmp_path)})
    assert again["r2"] == res["r2"] and again["nll_gap"] == res["nll_gap"]


def test_the_example_sweep_parses():
    from pathlib import Path

    sw = Sweep.from_json(Path(__file__).resolve().parents[1] / "examples" / "sweep_ladder.json")
    assert len(sw.cells()) == 16 and sw.x == "n_train"


def _cli(argv, capsys):
    from conceptid.cli import main

    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def test_the_command_line_runs_and_resumes(tmp_path, capsys):
    f = tmp_path / "toy.json"
    f.write_text(json.dumps(_toy(seeds=[0, 1])))
    out = tmp_path / "out"
    status, stdout, _ = _cli(["sweep", str(f), "--out", str(out), "--workers", "1", "--quiet"],
                             capsys)  # fmt: skip
    assert status == 0 and "4 cells: 0 already finished, 4 run now, 0 failed" in stdout
    status, stdout, _ = _cli(["sweep", str(f), "--out", str(out), "--quiet"], capsys)
    assert status == 0 and "4 already finished, 0 run now" in stdout


def test_a_failed_cell_gives_status_1_and_says_where(tmp_path, capfd):
    """capfd: the workers' own output too (they write to this process's stderr); found by
    review: a failing cell printed Dask's whole "Compute Failed" block with its traceback."""
    f = tmp_path / "toy.json"
    f.write_text(json.dumps(_toy(seeds=[0, 1], retries=0, params={"fail_seeds": [[1]]})))
    status, _, err = _cli(["sweep", str(f), "--out", str(tmp_path / "o"), "--workers", "1",
                           "--quiet"], capfd)  # fmt: skip
    assert status == 1 and "2 cell(s) failed after 0 retries" in err and "failed.json" in err
    lines = err.strip().splitlines()
    assert len(lines) == 3, err  # one line per failed cell, then the summary's
    for line in lines[:2]:  # the cells of n_train 10 and 100
        assert line.startswith("conceptid sweep: cell chain (pooled, seed 1) failed: "
                               "RuntimeError: toy cell told to fail (seed 1) (cells/")  # fmt: skip
    assert "Traceback" not in err and "Compute Failed" not in err


@pytest.mark.parametrize(
    "sweep, extra, words",
    [
        (None, [], "no sweep file"),
        ({"benchmarks": [{"spec": {"preset": "quad"}}], "methods": ["latent-flow"],
          "seeds": [0]}, [], "latent-flow needs vector observations"),
        ({"benchmarks": [{"spec": {"preset": "quad", "n_train": 100000}}], "methods": ["pooled"],
          "seeds": [0]}, ["--max-memory", "0.01"], "memory"),
        (_toy(task="nomod:fn"), [], "cannot import the task 'nomod:fn'"),
        (_toy(), ["--scheduler", "notanaddress"], "'notanaddress' is not a Dask scheduler address"),
        (_toy(), ["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
        (_toy(task=FIT, params={"epochs": [0]}), [],
         "params.epochs must be a positive integer, got 0"),
        (_toy(task=FIT, params={}, spec_grid={"n_train": [0]}), [],
         "benchmark 'chain': n_train must be a positive integer, got 0"),
        (_toy(benchmarks=[{"spec": 5}]), [], "benchmarks[0].spec must be an object"),
        (_toy(task=":"), [], "task must be 'module:function'"),
        (_toy(x=["n_train"]), [], "x must be the name of a spec_grid or params axis"),
        (_toy(seeds=[-1]), [], "seed must be"),
        (_toy(retries=10**30), [], "retries must be at most 100"),
        ({"benchmarks": [{"spec": {"preset": "random", "preset_args": {"m": 100000}}}],
          "methods": ["pooled"], "seeds": [0]}, [], "needs about"),
        (_toy(), ["--scheduler", "inproc://foo"],
         "'inproc://foo' is not a Dask scheduler address (tcp://HOST:PORT): scheme inproc://"),
        (_toy(), ["--scheduler", "ucx://127.0.0.1:8786"], "scheme ucx:// is not supported"),
        # tls:// is accepted: without Dask's TLS settings it cannot connect, and says so
        (_toy(), ["--scheduler", "tls://127.0.0.1:1"],
         "cannot reach the Dask scheduler at tls://127.0.0.1:1"),
        (_toy(), ["--scheduler", "ws://127.0.0.1:1"],
         "cannot reach the Dask scheduler at ws://127.0.0.1:1"),
        (_toy(), ["--scheduler", "tcp://127.0.0.1:99999"], "a port from 1 to 65535"),
        (_toy(), ["--scheduler", "tcp://:8786"], "it needs a host"),
    ],
)  # fmt: skip
def test_bad_sweeps_are_refused_before_any_work(tmp_path, capsys, monkeypatch, sweep, extra,
                                                 words):  # fmt: skip
    monkeypatch.setattr("conceptid.sweep._CONNECT_TIMEOUT", "1s")
    f = tmp_path / "s.json"
    if sweep is not None:
        f.write_text(json.dumps(sweep))
    out = tmp_path / "out"
    status, _, err = _cli(["sweep", str(f), "--out", str(out), *extra], capsys)
    assert status == 2 and words in err and len(err.strip().splitlines()) == 1
    assert err.startswith("conceptid sweep: error: ")
    assert "--methods" not in err  # sweep has no such option: the file's `methods` is named
    assert not out.exists()


def test_the_memory_limit_applies_to_every_cell(monkeypatch):
    """A default-task cell's data beyond the limit (--max-memory sets the variable) is refused
    before its model is built, naming the cell and the ways a sweep sets the limit."""
    fit = {"task": FIT, "params": {}, "spec_grid": {"n_train": [10, 100000]}}
    monkeypatch.setenv("CONCEPTID_MAX_MEMORY", "0.0001")
    words = r"benchmark 'chain': the cell chain \(seed 0\) \(\d+ samples of shape .*\) needs about"
    with pytest.raises(SweepError, match=words) as e:
        Sweep.from_dict(_toy(**fit))
    assert "conceptid sweep --max-memory" in str(e.value)
    assert "CONCEPTID_MAX_MEMORY" in str(e.value) and "max_memory=" not in str(e.value)
    # the ways to set the limit read as one phrase: the option, or the variable (from Python)
    assert str(e.value).endswith("set the limit in GiB with `conceptid sweep --max-memory GIB` "
                                 "or the CONCEPTID_MAX_MEMORY environment variable")  # fmt: skip
    assert "(from Python" not in str(e.value)
    monkeypatch.setenv("CONCEPTID_MAX_MEMORY", "100")
    assert len(Sweep.from_dict(_toy(**fit)).cells()) == 6


def test_a_custom_task_s_data_are_not_sized(monkeypatch):
    """The package never generates a custom task's data: a size beyond memory is the task's
    business, and only the model, which validation builds, is checked."""
    monkeypatch.setenv("CONCEPTID_MAX_MEMORY", "1")
    sweep = Sweep.from_dict(_toy(spec_grid={"n_train": [10**9]}))
    assert {c.spec["n_train"] for c in sweep.cells()} == {10**9}
    with pytest.raises(SweepError, match=r"the cell b0 \(seed 0\) \(its model\) needs about"):
        Sweep.from_dict(_toy(benchmarks=[{"spec": {"preset": "random",
                                                   "preset_args": {"p": 10**12}}}]))  # fmt: skip


def test_seeds_of_any_size_and_numbers_as_labels():
    chain = {"preset": "chain"}
    sweep = Sweep.from_dict(_toy(seeds=[2**70], benchmarks=[{"label": 500, "spec": chain}]))
    assert {(c.seed, c.spec["seed"], c.label) for c in sweep.cells()} == {(2**70, 2**70, "500")}
    half = Sweep.from_dict(_toy(benchmarks=[{"label": 0.5, "spec": {"preset": "chain"}}]))
    assert {c.label for c in half.cells()} == {"0.5"}


def test_every_scheduler_scheme_a_cluster_gives_is_accepted():
    """dask-jobqueue's clusters with security on give tls:// addresses."""
    from conceptid.sweep import _check_scheduler

    for ok in ("tcp://10.0.0.1:8786", "tls://10.0.0.1:8786", "ws://h:80", "wss://h:443",
               "node7:8786", "tls://[::1]:8786"):  # fmt: skip
        _check_scheduler(ok)
    for bad, words in (("inproc://foo", "scheme inproc://"), ("ucx://h:1", "scheme ucx://"),
                       ("tls://h", "missing port"), ("wss://:443", "needs a host"),
                       ("tcp://h:0", "a port from 1 to 65535"), ("notanaddress", "not a Dask"),
                       (8786, "must be a string")):  # fmt: skip
        with pytest.raises(SweepError, match=words):
            _check_scheduler(bad)


# ------------------------------------------------------------------- summaries of finished cells


def _finish(sweep, out, result=lambda c: {"score": 0.5 + 0.01 * c.seed}) -> list:
    """Write every cell of ``sweep`` as finished, as run_sweep does (no cluster, no training)."""
    from conceptid.sweep import _write_json

    cells = sweep.cells()
    (out / "cells").mkdir(parents=True, exist_ok=True)
    _write_json(out / "sweep.json", {"format": "conceptid.sweep/1", "sweep": sweep.to_dict()})
    for c in cells:
        _write_json(out / "cells" / f"{c.key}.json", {
            "identity": c.identity(), "cell": c.to_dict(), "result": result(c),
            "seconds": 0.1, "finished": "2025-01-01T00:00:00"})  # fmt: skip
    return cells


_L1 = {"label": "L1", "spec": {"preset": "random", "n_train": 30, "n_val": 10, "n_test": 10,
                               "preset_args": {"m": 3, "p": 6, "mixing": "linear"}}}  # fmt: skip


@pytest.mark.parametrize(
    "grid, x, column",
    [
        ({"bit_generator": ["pcg64", "sfc64"]}, None, ["pcg64", "sfc64"]),  # pcg64: the default
        ({"preset": ["random", "chain"]}, None, ["random", "chain"]),
        ({"preset_args": [{"m": 3, "p": 6}, {"m": 4, "p": 8}]}, "preset_args",
         [{"m": 3, "p": 6}, {"m": 4, "p": 8}]),
    ],
)  # fmt: skip
def test_every_grid_is_summarised(tmp_path, grid, x, column):
    """A spec field at its default value, text and objects on the x axis: the summary reads
    each grid point's value from the sweep and draws non-numbers as categories."""
    sw = Sweep.from_dict(_toy(benchmarks=[_L1], spec_grid=grid, x=x, seeds=[0, 1]))
    out = tmp_path / "s"
    _finish(sw, out)
    res = run_sweep(sw, out, progress=False)  # every cell finished: no cluster is started
    assert (res.cells, res.skipped, res.ran) == (4, 4, 0)
    (axis,) = grid
    scores = [r for r in res.rows if r["metric"] == "score"]
    assert [r[axis] for r in scores] == column
    assert all(r["per_seed"] == pytest.approx([0.5, 0.51]) for r in scores)
    assert (out / "summary.png").stat().st_size > 0
    texts = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in column]
    md = (out / "summary.md").read_text()
    assert all(f"| L1 | {t} | pooled |" in md for t in texts)
    with open(out / "summary.csv", newline="") as f:
        table = [r for r in csv.DictReader(f) if r["metric"] == "score"]
    assert [r[axis] for r in table] == texts  # objects as JSON, as lists are


def _ticks(monkeypatch) -> list:
    """The x tick labels of every panel of each figure saved from now on."""
    import conceptid.plots

    drawn, save = [], conceptid.plots.save_figure

    def keep(fig, path):
        out = save(fig, path)  # drawn: the tick labels are final
        drawn.append([[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes])
        return out

    monkeypatch.setattr(conceptid.plots, "save_figure", keep)
    return drawn


def test_the_figure_draws_text_as_categories(tmp_path, monkeypatch):
    """Categories in the grid's order, whatever order the rows come in; a value that is not in
    the grid after them; True is not 1."""
    from conceptid.sweep import _categories, sweep_figure

    drawn = _ticks(monkeypatch)
    rows = [{"benchmark": "L1", "preset": p, "method": "pooled", "metric": "score", "mean": m,
             "se": 0.0, "per_seed": [m]} for p, m in (("chain", 0.7), ("random", 0.5))]  # fmt: skip
    rows.append(rows[0] | {"preset": True, "mean": 0.1, "per_seed": [0.1]})
    sweep_figure(rows, "preset", tmp_path / "f.png", order=["random", "chain"])
    assert (tmp_path / "f.png").stat().st_size > 0
    assert drawn == [[["random", "chain", "True"]]]
    sweep_figure(rows, "preset", tmp_path / "g.png")  # no grid: the rows' order
    assert drawn[-1] == [["chain", "random", "True"]]
    assert _categories([1, True, "b", 1], order=["a", "b", True]) == ["b", True, 1]
    assert _categories([{"m": 4}, {"m": 3}], order=[{"m": 3}, {"m": 4}]) == [{"m": 3}, {"m": 4}]


def test_the_summary_figure_follows_the_grid_when_some_cells_are_missing(tmp_path, monkeypatch):
    """With only some cells finished the rows come in another order; the ticks do not."""
    l2 = {"label": "L2", "spec": _L1["spec"] | {"n_train": 40}}
    sw = Sweep.from_dict(_toy(benchmarks=[_L1, l2],
                              spec_grid={"preset": ["random", "chain"]}, seeds=[0]))  # fmt: skip
    out = tmp_path / "s"
    cells = _finish(sw, out)
    (l1_random,) = [c for c in cells if c.label == "L1" and c.spec["preset"] == "random"]
    (out / "cells" / f"{l1_random.key}.json").unlink()
    drawn = _ticks(monkeypatch)
    from conceptid.sweep import aggregate

    rows = aggregate(out, sw)
    assert [r["preset"] for r in rows if r["metric"] == "score"] == ["chain", "random", "chain"]
    assert drawn == [[["random", "chain"]]]


# ---------------------------------------------------------------- a damaged sweep directory


def test_a_damaged_cell_result_counts_as_not_finished(tmp_path, client):
    """Unreadable bytes, not an object, no result, a result that is not an object: the cell is
    not finished; the summary leaves it out, and a run redoes it and replaces the file."""
    sw = Sweep.from_dict(_toy(params={"sleep": [0.01]}))
    out = tmp_path / "s"
    cells = _finish(sw, out, result=lambda c: {"score": 1.0})
    damaged = {cells[0].key: b"\xff\xfe{", cells[1].key: b"[1]"}
    for c in cells[2:4]:
        rec = json.loads((out / "cells" / f"{c.key}.json").read_text())
        damaged[c.key] = json.dumps(
            rec | {"result": "x"} if c is cells[2] else {k: v for k, v in rec.items()
                                                         if k != "result"}).encode()  # fmt: skip
    for key, data in damaged.items():
        (out / "cells" / f"{key}.json").write_bytes(data)
    from conceptid.sweep import aggregate

    rows = aggregate(out, sw)
    assert sum(r["n"] for r in rows if r["metric"] == "score") == 2
    res = run_sweep(sw, out, client=client, progress=False)
    assert (res.skipped, res.ran, res.failed) == (2, 4, [])
    for key in damaged:
        assert json.loads((out / "cells" / f"{key}.json").read_text())["result"]["n"] > 0
    assert all(r["n"] == 3 for r in res.rows if r["metric"] == "score")


@pytest.mark.parametrize("name", ["KEY.json", "KEY.failed.json"])
def test_a_directory_where_a_cell_record_goes_is_refused_before_any_work(tmp_path, name):
    sw = Sweep.from_dict(_toy())
    out = tmp_path / "s"
    _finish(sw, out)
    blocked = out / "cells" / name.replace("KEY", sw.cells()[0].key)
    blocked.unlink(missing_ok=True)
    blocked.mkdir()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(SweepError, match=f"{blocked.name} is a directory; a sweep writes"):
        run_sweep(sw, out, progress=False)  # no client: it would start a cluster
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.parametrize("task, kind", [("builtins:len", "int"), ("builtins:list", "list")])
def test_a_task_that_returns_no_dict_fails_the_cell(tmp_path, client, task, kind):
    """A task returns a dict of metrics; anything else fails its cell, once, with a message."""
    sw = Sweep.from_dict(_toy(task=task, spec_grid={}, seeds=[0, 1]))
    out = tmp_path / "s"
    res = run_sweep(sw, out, client=client, progress=False)
    assert sorted(res.failed) == sorted(c.key for c in sw.cells())
    assert (res.ran, res.rows, res.complete) == (0, [], False)
    for c in sw.cells():
        rec = json.loads((out / "cells" / f"{c.key}.failed.json").read_text())
        assert rec["error"].startswith(f"TypeError: the task {task} returned {kind} ")
        assert "a task must return a dict of metrics" in rec["error"]
        assert not (out / "cells" / f"{c.key}.json").exists()
    again = run_sweep(sw, out, client=client, progress=False)
    assert (again.skipped, len(again.failed)) == (0, 2)


def test_a_result_that_json_cannot_hold_fails_the_cell(tmp_path):
    from conceptid.sweep import _record

    (cell,) = Sweep.from_dict(_toy(spec_grid={}, seeds=[0])).cells()
    path = tmp_path / "c.json"
    error = _record(path, cell, {"result": {"score": object()}, "seconds": 0.1})
    assert "JSON cannot hold" in error and "a task must return a dict of metrics" in error
    assert not path.exists()
    assert _record(path, cell, {"result": {"score": 0.5}, "seconds": 0.1}) is None
    assert json.loads(path.read_text())["result"] == {"score": 0.5}


def test_cells_that_is_not_a_directory_is_refused_before_any_work(tmp_path):
    sw = Sweep.from_dict(_toy())
    out = tmp_path / "s"
    run_dir = out / "cells"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"format": "conceptid.sweep/1"}))
    run_dir.write_text("")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(SweepError, match=r"s/cells is not a directory"):
        run_sweep(sw, out, progress=False)  # no client: it would start a cluster
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_foreign_directory_is_refused_on_the_command_line(tmp_path, capsys):
    f = tmp_path / "toy.json"
    f.write_text(json.dumps(_toy()))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    status, _, err = _cli(["sweep", str(f), "--out", str(tmp_path / "mine")], capsys)
    assert status == 2 and "not a sweep directory" in err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_figure_tells_a_dozen_lines_apart():
    """Colour by benchmark, line style and marker by method: twelve lines, twelve looks."""
    from conceptid.plots import pyplot
    from conceptid.sweep import _line_styles

    rows = [
        {"benchmark": b, "method": m, "metric": "mean_r2"}
        for b in ("L1", "L2", "L3", "L4", "L3s", "L4s")
        for m in ("latent-flow", "pooled")
    ]

    def name_of(r):
        return f"{r['benchmark']} {r['method']}"

    style = _line_styles(rows, ["benchmark", "method"], name_of, pyplot())
    looks = {n: (s["color"], s["linestyle"], s["marker"]) for n, s in style.items()}
    assert len(set(looks.values())) == 12
    assert style["L3 latent-flow"]["color"] == style["L3 pooled"]["color"]
    assert style["L3 latent-flow"]["linestyle"] == style["L4s latent-flow"]["linestyle"]
    assert style["L3 latent-flow"]["linestyle"] != style["L3 pooled"]["linestyle"]
    assert len({s["color"] for s in style.values()}) == 6


def test_the_summary_keeps_the_noise_check_of_each_part():
    """A cell's noise check (conceptid.modelcheck) enters the summary as one scalar per part
    that was checked: its statistic per degree of freedom."""
    from conceptid.sweep import _scalars

    result = {"mean_r2": 0.9, "r2": [0.8, 1.0], "mcc": None,
              "noise_check": {"training": {"statistic_per_dof": 1.5, "min_p": 0.1},
                              "held_out": None}}  # fmt: skip
    assert _scalars(result) == {"mean_r2": 0.9, "r2[0]": 0.8, "r2[1]": 1.0,
                                "noise_training_per_dof": 1.5}  # fmt: skip


# ------------------------------------------------------------ the summary files of a rerun


_NAMES = ("summary.csv", "summary.md", "summary.png")


def test_a_sweep_without_an_axis_removes_an_earlier_figure(tmp_path):
    """A rerun into the same directory whose grid has no axis draws no figure, and removes the
    earlier one, which would contradict the tables; the result lists what was written."""
    out = tmp_path / "s"
    two = Sweep.from_dict(_toy(benchmarks=[_L1], seeds=[0]))  # n_train 10 and 100: an axis
    _finish(two, out)
    res = run_sweep(two, out, progress=False)  # every cell finished: no cluster is started
    assert res.summary_files == tuple(out / n for n in _NAMES)
    assert (out / "summary.png").stat().st_size > 0
    one = Sweep.from_dict(_toy(benchmarks=[_L1], spec_grid={"n_train": [10]}, seeds=[0]))
    res = run_sweep(one, out, progress=False)  # its one cell is finished; default workers
    assert res.summary_files == (out / "summary.csv", out / "summary.md")
    assert all(p.stat().st_size > 0 for p in res.summary_files)
    assert not (out / "summary.png").exists()
    assert "| L1 | 10 | pooled |" in (out / "summary.md").read_text()
    assert "| L1 | 100 |" not in (out / "summary.md").read_text()
    again = run_sweep(one, out, progress=False)  # nothing to remove: fine too
    assert again.summary_files == res.summary_files
    # found by review: a link at summary.png is never the package's (it writes the file)
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"mine")
    (out / "summary.png").symlink_to(mine)
    run_sweep(one, out, progress=False)
    assert (out / "summary.png").is_symlink() and mine.read_bytes() == b"mine"


def test_a_figure_in_a_directory_that_is_no_sweep_s_is_kept(tmp_path):
    """aggregate removes a stale figure only from a sweep directory (marked by sweep.json)."""
    from conceptid.sweep import aggregate

    one = Sweep.from_dict(_toy(benchmarks=[_L1], spec_grid={}, seeds=[0]))
    (tmp_path / "summary.png").write_bytes(b"mine")
    assert aggregate(tmp_path, one) == []
    assert (tmp_path / "summary.png").read_bytes() == b"mine"


# ------------------------------------------------------------------------- local workers


def test_more_workers_than_cells_to_run_are_never_started(tmp_path, capsys, monkeypatch):
    """Found by review: --workers 1000 on a one-cell sweep started 1000 Dask workers. However
    many are asked for (the command line, Python, a benchmark passing 2), no more start than
    the cells left to run; the caller's cluster (or a scheduler's) takes none from it."""
    started = []

    def record(scheduler, workers, threads):
        started.append(workers)
        raise SweepError("no cluster in this test")

    monkeypatch.setattr("conceptid.sweep._client", record)
    f = tmp_path / "one.json"
    f.write_text(json.dumps(_toy(spec_grid={}, seeds=[0])))
    status, _, err = _cli(["sweep", str(f), "--out", str(tmp_path / "o"), "--workers", "1000"],
                          capsys)  # fmt: skip
    assert status == 2 and "no cluster in this test" in err
    one = Sweep.from_dict(_toy(spec_grid={}, seeds=[0]))
    with pytest.raises(SweepError, match="no cluster in this test"):
        run_sweep(one, tmp_path / "p", workers=2, progress=False)
    assert started == [1, 1]
    assert not (tmp_path / "o").exists() and not (tmp_path / "p").exists()
    _finish(one, tmp_path / "c")
    res = run_sweep(one, tmp_path / "c", workers=1000, client=_NoClient(), progress=False)
    assert (res.cells, res.skipped) == (1, 1)


class _NoClient:
    """A client that is never used: every cell of its sweep runs, as a finished record."""

    def __getattr__(self, name):
        raise AssertionError(f"the client was used: {name}")


def test_the_default_workers_are_lowered_to_the_cells_to_run(tmp_path, monkeypatch):
    """The default (2) never refuses a one-cell sweep; no more workers start than there are
    cells to run."""
    started = []

    def record(scheduler, workers, threads):
        started.append(workers)
        raise SweepError("no cluster in this test")

    monkeypatch.setattr("conceptid.sweep._client", record)
    one = Sweep.from_dict(_toy(spec_grid={}, seeds=[0]))
    with pytest.raises(SweepError, match="no cluster in this test"):
        run_sweep(one, tmp_path / "a", progress=False)
    sw = Sweep.from_dict(_toy())  # 6 cells, 2 of them left to run
    out = tmp_path / "b"
    for c in _finish(sw, out)[:2]:
        (out / "cells" / f"{c.key}.json").unlink()
    with pytest.raises(SweepError, match="no cluster in this test"):
        run_sweep(sw, out, workers=5, progress=False)
    assert started == [1, 2]
    assert not (tmp_path / "a").exists()


def test_workers_beyond_the_memory_limit_are_refused_before_any_work(tmp_path, capsys,
                                                                     monkeypatch):  # fmt: skip
    f = tmp_path / "toy.json"
    f.write_text(json.dumps(_toy()))
    out = tmp_path / "out"
    argv = ["sweep", str(f), "--out", str(out), "--workers", "4", "--max-memory", "1.5"]
    status, _, err = _cli(argv, capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("conceptid sweep: error: a LocalCluster of 4 worker processes (about "
                          "0.5 GiB each with torch loaded, before their cells' data) needs "
                          "about 2 GiB, more than the 1.5 GiB ")  # fmt: skip
    assert err.endswith(
        "; ask for fewer workers, or set the limit in GiB with `conceptid sweep "
        "--max-memory GIB` or the CONCEPTID_MAX_MEMORY environment variable\n"
    )
    assert "samples" not in err and not out.exists()
    monkeypatch.setenv("CONCEPTID_MAX_MEMORY", "0.25")
    with pytest.raises(
        SweepError,
        match=r"of 1 worker process \(about 0.5 GiB with torch.* "
        r"GiB .*; free some memory, or set the limit",
    ):
        run_sweep(Sweep.from_dict(_toy()), out, workers=1, progress=False)
    assert not out.exists()


# -------------------------------------------------------------- two cells that are one fit


def test_two_cells_that_are_the_same_fit_are_named():
    chain = {"preset": "chain"}
    same = [{"label": "a", "spec": chain}, {"label": "b", "spec": chain}]
    with pytest.raises(SweepError) as e:
        Sweep.from_dict(_toy(benchmarks=same, seeds=[3]))
    assert str(e.value) == ("two cells of the grid are the same fit: the cell a (n_train=10, "
                            "method pooled, sleep=0.05, seed 3) and the cell b (n_train=10, "
                            "method pooled, sleep=0.05, seed 3) give the same spec, method, "
                            "parameters and seed")  # fmt: skip
    # a spec that gives a field at its default value is the same spec
    two = [
        {"label": "c", "spec": chain | {"bit_generator": "pcg64"}},
        {"label": "d", "spec": chain},
    ]
    words = r"the cell c \(method pooled, sleep=0.05, seed 0\) and the cell d \(method pooled"
    with pytest.raises(SweepError, match=words):
        Sweep.from_dict(_toy(benchmarks=two, spec_grid={}, seeds=[0]))


# ------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_ends_a_local_sweep_with_one_line(tmp_path):
    """Ctrl-C, which a terminal sends to every process of the sweep (its workers too), ends it
    with the one line that says so: no warning or traceback of Dask's workers or nannies."""
    f = tmp_path / "slow.json"
    f.write_text(json.dumps(_toy(params={"sleep": [60]}, seeds=[0, 1])))
    out = tmp_path / "out"
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from conceptid.cli import main; sys.exit(main(sys.argv[1:]))")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "sweep", str(f), "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 180
        while not (out / "sweep.json").exists() and proc.poll() is None:
            assert time.time() < deadline, "the sweep did not start"
            time.sleep(0.1)
        time.sleep(2)  # the cells reach the workers
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert (proc.returncode, stdout, stderr) == (130, "", "conceptid sweep: interrupted\n")
    assert not list((out / "cells").glob("*.json"))  # no cell finished, none half-written


def test_a_worker_leaves_ctrl_c_to_the_client_and_its_shutdown_quiet():
    """dask_setup (the local workers' preload): SIGINT ignored; below an error, nothing is
    printed once the worker is closing. _quiet_shutdown: the same for this process."""
    import logging
    from types import SimpleNamespace

    from conceptid.sweep import _quiet_shutdown, dask_setup

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    log = logging.getLogger("distributed")
    log.addHandler(handler)
    before = signal.getsignal(signal.SIGINT)
    worker = SimpleNamespace(status=SimpleNamespace(name="running"))
    try:
        dask_setup(worker)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        log.warning("w1")
        worker.status.name = "closing"
        log.warning("w2")
        log.error("e1")
        worker.status.name = "running"
        with _quiet_shutdown(True):
            log.warning("w3")
            log.error("e2")
        log.warning("w4")
        with _quiet_shutdown(False):
            log.warning("w5")
    finally:
        signal.signal(signal.SIGINT, before)
        log.removeHandler(handler)
    assert seen == ["w1", "e1", "e2", "w4", "w5"]


def test_seed_is_not_a_grid_axis_and_a_benchmark_entry_has_no_unknown_field():
    # found by review: spec_grid {"seed": [5]} ran every cell with the cell's own seed while the
    # summary named 5; a misspelt "lable" named the benchmark b0 in every summary
    with pytest.raises(SweepError, match="seed may not be a spec_grid axis"):
        Sweep.from_dict(_toy(spec_grid={"seed": [5]}))
    with pytest.raises(SweepError, match=r"unknown training parameter\(s\) \['seed'\]"):
        Sweep.from_dict(_toy(task=FIT, params={"seed": [5]}))
    # a custom task gets its params apart from the cell's seed: a 'seed' there is its own
    assert Sweep.from_dict(_toy(params={"seed": [5], "sleep": [0.01]})).params["seed"] == [5]
    bench = [{"lable": "chain", "spec": {"preset": "chain"}}]
    with pytest.raises(SweepError, match=r"benchmarks\[0\]: unknown field\(s\) \['lable'\]"):
        Sweep.from_dict(_toy(benchmarks=bench))


def test_a_single_seed_row_has_no_standard_error():
    sw = Sweep.from_dict(_toy(seeds=[0, 1]))
    row = {"benchmark": "chain", "n_train": 10, "method": "pooled", "sleep": 0.05,
           "metric": "score", "mean": 0.5, "se": 0.0, "n": 1, "min": 0.5, "max": 0.5,
           "per_seed": [0.5], "seeds": [1]}  # fmt: skip
    md = summary_markdown([row], sw, ["chain (n_train=10, method pooled, sleep=0.05, seed 0)"])
    assert "0.5 +- n/a [0.5] (seeds 1 only)" in md
    assert md.rstrip().endswith("- chain (n_train=10, method pooled, sleep=0.05, seed 0)")


def test_a_task_module_that_exits_as_it_is_imported_is_a_sweep_error(tmp_path, monkeypatch):
    # found by review: SystemExit from the import left main() as an exception (or exit 0)
    (tmp_path / "conceptid_exiting_task.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SweepError, match=r"importing it called sys.exit\(0\)"):
        Sweep.from_dict(_toy(task="conceptid_exiting_task:fn"))
    sys.modules.pop("conceptid_exiting_task", None)
