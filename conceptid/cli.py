"""The ``conceptid`` command line.

Subcommands: ``simulate`` (spec or preset -> dataset directory), ``inspect`` (card, per-context
statistics, and a PNG of samples per context), ``check`` (identifiability report of a model).
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
    if a.n_per_context is not None:
        n = a.n_per_context
        overrides.update(n_train=n, n_val=max(1, n // 4), n_test=max(1, n // 4))
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
    report = check(model, a.method, rng=np.random.default_rng(a.seed or 0))
    print(report.to_json() if a.json else report)
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
    c.set_defaults(func=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return a.func(a)
    except USER_ERRORS as err:
        print(f"conceptid {a.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
