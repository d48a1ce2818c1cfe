"""The ``conceptid`` command line.

``run`` does the main job (benchmark -> check -> train -> evaluate -> report) in a run directory;
each stage also runs on its own, reading and writing the same files: ``simulate`` (spec or
preset -> dataset directory), ``inspect`` (card, statistics, a PNG of samples per context),
``check`` (identifiability report), ``train`` (one method into RUN/models/METHOD), ``evaluate``
(metrics, figures and report of the trained methods of a run), ``generate`` (samples of a
trained model under any set of targets).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from simulations.benchmark import BenchmarkSpec, DatasetError, generate, load_dataset
from simulations.graphs import GraphError
from simulations.interventions import InterventionError
from simulations.mixing import MixingError
from simulations.model import ModelError
from simulations.sem import SEMError

#: errors that come from bad user input: printed as one line, exit status 2
USER_ERRORS = (DatasetError, GraphError, InterventionError, MixingError, ModelError, SEMError)


def _parse_kv(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DatasetError(f"--preset-arg expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string such as mlp
    return out


def _per_context(n: int | None) -> dict:
    """``--n-per-context N``: N training samples per context, a quarter (at least 1) for
    validation and test; nothing when not given."""
    if n is None:
        return {}
    return {"n_train": n, "n_val": max(1, n // 4), "n_test": max(1, n // 4)}


def _spec_from_args(a: argparse.Namespace) -> BenchmarkSpec:
    if a.spec:
        given = [
            flag
            for flag, v in (
                ("--image-size", a.image_size),
                ("--m", a.m),
                ("--mixing", a.mixing),
                ("--nuisance-dim", a.nuisance_dim),
                ("--preset-arg", a.preset_arg or None),
            )
            if v is not None
        ]
        if given:
            raise DatasetError(
                f"{', '.join(given)} cannot be combined with --spec: put them in the spec file"
            )
        spec = BenchmarkSpec.from_json(a.spec)
        overrides = {}
    else:
        args = _parse_kv(a.preset_arg)
        if a.image_size is not None:
            if a.preset != "quad":
                raise DatasetError("--image-size applies to the quad preset only")
            args["image_size"] = a.image_size
        for key in ("m", "mixing", "nuisance_dim"):
            v = getattr(a, key)
            if v is not None:
                args[key] = v
        spec = BenchmarkSpec(preset=a.preset, preset_args=args)
        overrides = {}
    overrides.update(_per_context(a.n_per_context))
    for key in ("n_val", "n_test", "seed"):
        v = getattr(a, key)
        if v is not None:
            overrides[key] = v
    if overrides:
        spec = BenchmarkSpec.from_dict({**spec.to_dict(), **overrides})
    return spec


def cmd_simulate(a: argparse.Namespace) -> int:
    spec = _spec_from_args(a)
    out = Path(a.out)
    if out.exists() and not a.overwrite:
        raise DatasetError(f"{out} exists; pass --overwrite to replace it")
    t0 = time.perf_counter()
    ds = generate(spec, progress=not a.quiet, name=a.name or "")
    ds.save(out, overwrite=a.overwrite)
    n = len(ds.context)
    print(
        f"wrote {out}: {n} samples, {len(ds.context_names)} contexts "
        f"({sum(c['held_out'] for c in ds.card['contexts'])} held out), "
        f"x {ds.x.dtype} {tuple(ds.x.shape[1:])}, {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_inspect(a: argparse.Namespace) -> int:
    from .plots import samples_grid

    ds = load_dataset(a.dir)
    print(ds.summary())
    if not a.no_figure and len(ds.context) == 0:
        print("\nthe dataset holds no samples: no figure written")
    elif not a.no_figure:
        fig = Path(a.figure) if a.figure else Path(a.dir) / "samples_per_context.png"
        samples_grid(ds, fig, per_context=a.per_context)
        print(f"\nwrote {fig}")
    return 0


def _load_model(a: argparse.Namespace):
    """The model to check: --preset, a dataset directory, a spec file or a model file."""
    from simulations.model import ConceptModel

    if a.source is None:
        args = _parse_kv(a.preset_arg)
        seed = a.seed if a.seed is not None else 0
        return BenchmarkSpec(preset=a.preset, preset_args=args, seed=seed).build_model()
    if a.preset_arg:
        raise DatasetError("--preset-arg applies to --preset only; put arguments in the spec file")
    path = Path(a.source)
    if path.is_dir():
        return load_dataset(path).model
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from None
    if isinstance(data, dict) and "sem" in data and "mixing" in data:
        return ConceptModel.from_dict(data)
    spec = BenchmarkSpec.from_dict(data)
    if a.seed is not None and a.seed != spec.seed:
        spec = BenchmarkSpec.from_dict({**spec.to_dict(), "seed": a.seed})
    return spec.build_model()


def cmd_check(a: argparse.Namespace) -> int:
    import numpy as np

    from identifiability import check

    model = _load_model(a)
    if a.mixing:
        import os
        from dataclasses import replace

        from simulations.mixing import mixing_from_reference

        if os.getcwd() not in sys.path:  # like a script: a module of the current directory
            sys.path.insert(0, os.getcwd())
        model = replace(model, mixing=mixing_from_reference(a.mixing, model.d))
    report = check(model, a.method, rng=np.random.default_rng(a.seed or 0))
    print(report.to_json() if a.json else report)
    return 0


#: the built-in default benchmark of ``conceptid run`` and ``make demo``
DEFAULT_RUN = {"preset": "quad", "preset_args": {"image_size": 32}, "n_train": 500, "n_val": 100,
               "n_test": 100}  # fmt: skip


def _run_spec(a: argparse.Namespace) -> BenchmarkSpec:
    if a.spec:
        spec = BenchmarkSpec.from_json(a.spec)
    else:
        base = dict(DEFAULT_RUN) if a.preset == "quad" else {"preset": a.preset}
        base["preset_args"] = {**base.get("preset_args", {}), **_parse_kv(a.preset_arg)}
        spec = BenchmarkSpec.from_dict({**BenchmarkSpec(preset=a.preset).to_dict(), **base})
    over = {"seed": a.seed, **_per_context(a.n_per_context)}
    return BenchmarkSpec.from_dict({**spec.to_dict(), **over})


RESTARTS_HELP = "fits per method from different seeds; the best is kept (default 1)"


def _methods(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def cmd_run(a: argparse.Namespace) -> int:
    from .pipeline import RunConfig, run

    cfg = RunConfig(spec=_run_spec(a), out=Path(a.out), seed=a.seed, epochs=a.epochs,
                    batch_size=a.batch_size, device=a.device, methods=_methods(a.methods),
                    check_method=a.check_method, restarts=a.restarts,
                    progress=not a.quiet)  # fmt: skip
    run(cfg)
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .pipeline import default_methods, train_method

    ds = load_dataset(a.data)
    out = Path(a.out)
    for name in _methods(a.methods) or default_methods(ds):
        model, hist = train_method(name, ds, out, seed=a.seed, epochs=a.epochs,
                                   batch_size=a.batch_size, device=a.device,
                                   progress=not a.quiet, restarts=a.restarts)  # fmt: skip
        print(f"{name}: {len(hist['val_loss'])} epochs, best validation loss "
              f"{min(hist['val_loss']):.4g} -> {out / 'models' / name / 'final.pt'}")  # fmt: skip
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    import numpy as np

    from identifiability import check

    from .pipeline import RunConfig, evaluate_and_report, load_trained

    out = Path(a.run)
    ds = load_dataset(a.data or out / "data")
    finals = sorted((out / "models").glob("*/final.pt"))
    if not finals:
        raise DatasetError(f"{out / 'models'} holds no trained model (run `conceptid train`)")
    trained, histories, first = {}, {}, None
    for f in finals:
        model, state = load_trained(f, ds)
        trained[state["method"]], histories[state["method"]] = model, state["history"]
        first = first or state["config"]
    spec = BenchmarkSpec.from_dict(ds.card["spec"])
    cfg = RunConfig(spec=spec, out=out, seed=first["seed"], epochs=first["epochs"],
                    batch_size=first["batch_size"], lr=first["lr"], methods=list(trained),
                    restarts=first.get("restarts", 1), progress=False)  # fmt: skip
    report = check(ds.model, a.check_method, rng=np.random.default_rng(cfg.seed))
    timings = {"data": 0.0, "check": report.seconds,
               "train": {k: h.get("seconds", 0.0) for k, h in histories.items()}}  # fmt: skip
    evaluate_and_report(ds, trained, histories, cfg, report, timings)
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .pipeline import load_trained

    model_dir = Path(a.model)
    final = model_dir / "final.pt" if model_dir.is_dir() else model_dir
    run_dir = final.parent.parent.parent
    ds = load_dataset(a.data or run_dir / "data")
    model, state = load_trained(final, ds)
    names = list(ds.card["concept_names"])
    targets = [t.strip() for t in (a.targets or "").split(",") if t.strip()]
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise DatasetError(f"unknown intervention targets {unknown}; concepts: {names}")
    if a.n < 1:
        raise DatasetError(f"--n must be a positive integer, got {a.n}")
    mask = torch.zeros(a.n, len(names), dtype=torch.bool)
    for t in targets:
        mask[:, names.index(t)] = True
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        x = model.generate(mask, generator=g).numpy()
    norm = state.get("normaliser") or {}
    if norm.get("mean") is not None:  # back to the data's units
        x = x * norm["std"].numpy() + norm["mean"].numpy()
    out = Path(a.out)
    if out.suffix == ".png":
        from .report import _plt

        plt = _plt()
        if x.ndim != 4:
            raise DatasetError("a PNG needs image samples; write vector samples to a .npy file")
        cols = min(8, a.n)
        rows = -(-a.n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, img in zip(axes.flat, x):
            ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1))
        from .plots import _atomic_savefig

        _atomic_savefig(fig, out)
        plt.close(fig)
    elif out.suffix == ".npy":
        from .pipeline import atomic_npy

        atomic_npy(out, x.astype(np.float32))
    else:
        raise DatasetError(f"--out must end in .npy or .png, got {out.name!r}")
    label = "do(" + ",".join(targets) + ")" if targets else "observational"
    print(f"wrote {out}: {a.n} samples of {label} from {state['method']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conceptid", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="generate a benchmark dataset directory")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=["chain", "random", "quad"], default="quad")
    src.add_argument("--spec", help="a BenchmarkSpec JSON file")
    s.add_argument("--out", required=True, help="dataset directory to write (atomically)")
    s.add_argument(
        "--n-per-context", type=int, help="training samples per context (val/test: a quarter)"
    )
    s.add_argument("--n-val", type=int)
    s.add_argument("--n-test", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--image-size", type=int, help="quad: image width/height (32 or 64)")
    s.add_argument("--m", type=int, help="chain/random: number of concepts")
    s.add_argument(
        "--mixing", help="identity | linear | mlp (chain/random); image | identity (quad)"
    )
    s.add_argument("--nuisance-dim", type=int, help="chain/random: nuisance dimensions")
    s.add_argument(
        "--preset-arg", action="append", default=[], metavar="KEY=VALUE",
        help="any other preset argument, VALUE parsed as JSON (repeatable)",
    )  # fmt: skip
    s.add_argument("--name", help="dataset name recorded in the card")
    s.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("inspect", help="print a dataset's card and statistics, plot samples")
    i.add_argument("dir")
    i.add_argument("--figure", help="PNG path (default DIR/samples_per_context.png)")
    i.add_argument("--per-context", type=int, default=8)
    i.add_argument("--no-figure", action="store_true")
    i.set_defaults(func=cmd_inspect)

    c = sub.add_parser(
        "check",
        help="decide identifiability of a model's concepts (per concept and per assumption)",
    )
    c.add_argument(
        "source",
        nargs="?",
        help="a spec JSON, a model JSON (ConceptModel.to_dict), or a dataset dir",
    )
    c.add_argument("--preset", choices=["chain", "random", "quad"], default="quad")
    c.add_argument("--preset-arg", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--seed", type=int, default=None, help="seed of the model and numeric searches")
    c.add_argument("--method", choices=["exact", "numeric"], default="exact")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument(
        "--mixing", metavar="MODULE:FUNCTION",
        help="replace the model's mixing by your own: a function of the embedding e (n, d) "
        "(or a Mixing instance), e.g. mypkg.scenes:render",
    )  # fmt: skip
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("run", help="the main job: benchmark, check, train, evaluate, report")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=["chain", "random", "quad"], default="quad",
                     help="default: quad at 32x32, 500 training samples per context")  # fmt: skip
    src.add_argument("--spec", help="a BenchmarkSpec JSON file")
    r.add_argument("--preset-arg", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--n-per-context", type=int, help="training samples per context")
    r.add_argument("--out", default="runs/default", help="run directory (default runs/default)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--epochs", type=int, default=20)
    r.add_argument("--batch-size", type=int, default=128)
    r.add_argument("--restarts", type=int, default=1, help=RESTARTS_HELP)
    r.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    r.add_argument("--methods", help="comma-separated (default: every method that applies)")
    r.add_argument("--check-method", choices=["exact", "numeric"], default="exact")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("train", help="train methods on a dataset into RUN/models/METHOD")
    t.add_argument("data", help="a dataset directory")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--methods", help="comma-separated (default: every method that applies)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--restarts", type=int, default=1, help=RESTARTS_HELP)
    t.add_argument("--device", default="cpu")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics, figures and report of a run's trained models")
    e.add_argument("run", help="run directory (with models/*/final.pt)")
    e.add_argument("--data", help="dataset directory (default RUN/data)")
    e.add_argument("--check-method", choices=["exact", "numeric"], default="exact")
    e.set_defaults(func=cmd_evaluate)

    g = sub.add_parser("generate", help="samples of a trained model under any set of targets")
    g.add_argument("model", help="RUN/models/METHOD (or its final.pt)")
    g.add_argument("--targets", default="", help="comma-separated concepts (empty: observational)")
    g.add_argument("--n", type=int, default=16)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--data", help="dataset directory (default RUN/data)")
    g.add_argument("--out", required=True, help="a .npy file, or .png for images")
    g.set_defaults(func=cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return a.func(a)
    except Exception as err:
        if not isinstance(err, USER_ERRORS + _late_user_errors()):
            raise
        print(f"conceptid {a.command}: error: {err}", file=sys.stderr)
        return 2


def _late_user_errors() -> tuple:
    """User-input errors of the torch layers, if they were imported (the data commands never
    import torch)."""
    out = []
    for module, name in (("models.trainer", "CheckpointError"),
                         ("conceptid.pipeline", "PipelineError")):  # fmt: skip
        mod = sys.modules.get(module)
        if mod is not None:
            out.append(getattr(mod, name))
    return tuple(out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
