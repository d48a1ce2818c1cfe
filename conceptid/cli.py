"""The ``conceptid`` command line.

``run`` does the main job (benchmark -> check -> train -> evaluate -> report) in a run directory;
each stage also runs on its own, reading and writing the same files: ``simulate`` (spec or
preset -> dataset directory), ``import`` (a user's own data, or contexts made from real
handwritten digits -> dataset directory), ``inspect`` (card, statistics, a PNG of samples per
context), ``check`` (identifiability report), ``train`` (one method into RUN/models/METHOD),
``evaluate`` (metrics, figures and report of the trained methods of a run), ``generate``
(samples of a trained model under any set of targets).

Every subcommand validates all of its arguments (:func:`main` calls its ``validate_*`` function)
before any work starts, so a refusal writes nothing. Bad input, the package's own errors
(:class:`~conceptid.simulations.errors.ConceptIDError`) included, prints one line
``conceptid COMMAND: error: MESSAGE`` and exits with status 2; Ctrl-C prints one line and exits
with 130; a closed output pipe (``conceptid check | head``) ends quietly. Every command runs with
the current directory last on ``sys.path``, so that a mixing saved as ``module:function`` is
found there (a model or spec file, a dataset's card, ``check --mixing``), and a file there never
shadows a module the command imports.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import textwrap
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

from conceptid.simulations.benchmark import (
    BIT_GENERATORS,
    BenchmarkSpec,
    DatasetError,
    check_save_target,
    generate,
    is_dataset_dir,
    load_dataset,
)
from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.imported import DEFAULT_FRACTIONS
from conceptid.simulations.resources import ENV, check_memory, estimate_dataset, training_bytes
from conceptid.simulations.validation import (
    check_number,
    json_limit,
    parse_json,
    read_bytes,
    unique_keys,
)

from . import __version__
from .config import CHECK_METHODS, DEFAULT_PRESET, DEFAULT_RUN, DEFAULTS, PRESET_NAMES
from .methods import METHODS

#: ``conceptid --help``: plain text (the module docstring is reStructuredText)
DESCRIPTION = """\
Causal concept identifiability: synthetic benchmarks with ground truth, identifiability checks,
and concept learners trained and evaluated against the proven equivalence class.

`conceptid run` does the main job in one run directory; each other command is one stage of it.
`conceptid COMMAND --help` lists a command's options with their defaults."""

EPILOG = """\
Bad input prints one line naming the problem and exits with status 2; Ctrl-C exits with 130."""

#: the methods of ``run`` and ``train``: the registry's (conceptid.methods.METHODS, which imports
#: no torch, so that ``--help`` lists them quickly)
METHOD_NAMES = tuple(METHODS)
#: image sizes the models take (models.nets.IMAGE_SIZES; a test keeps them equal)
IMAGE_SIZES = (32, 64)


class ArgumentsError(UsageError):
    """The command line itself is malformed (an unknown option, a missing or mistyped value).

    Raised instead of argparse's usage-and-exit, so that :func:`main` prints it as one line.
    ``prog`` is the (sub)command it belongs to, e.g. ``"conceptid simulate"``.
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _StoreOnce(argparse._StoreAction):
    """An option that takes one value refuses a second: argparse would keep the last without a
    word (``generate --targets c0 --targets c1`` sampled do(c1)). Options that collect values
    (``action="append"``) and flags are other actions. An abbreviation (``--targ``) counts as
    the option, since argparse has resolved it by then."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # the namespaces (one per parse) this option already filled, by identity (a Namespace
        # compares by value and cannot be hashed), held weakly
        self._given_in: list[weakref.ref] = []

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        self._given_in = [ref for ref in self._given_in if ref() is not None]
        if any(ref() is namespace for ref in self._given_in):
            parser.error(f"{(self.option_strings or [self.dest])[-1]} is given twice; give it once")
        self._given_in.append(weakref.ref(namespace))
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, number options whose ranges one validator checks, and
    options of one value given once (:class:`_StoreOnce`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)  # add_argument's default action
        self.register("action", "store", _StoreOnce)
        self.numbers: list[tuple[str, str, dict]] = []
        self.set_defaults(numbers=self.numbers)

    def error(self, message: str):  # argparse would print the usage and exit
        raise ArgumentsError(self.prog, message)

    def add_number(self, flag: str, *, integer: bool = True, minimum: float = 1,
                   exclusive: bool = False, **kwargs) -> argparse.Action:  # fmt: skip
        """An option holding a number; :func:`check_numbers` checks its range with
        :func:`conceptid.simulations.validation.check_number` (one rule, one wording,
        everywhere)."""
        kind = "N" if integer else "X"
        action = self.add_argument(
            flag, type=_integer if integer else _number, metavar=kwargs.pop("metavar", kind),
            **kwargs,
        )  # fmt: skip
        rule = {"integer": integer, "minimum": minimum, "exclusive": exclusive}
        self.numbers.append((flag, action.dest, rule))
        return action


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; appends the default to every option that has one;
    never breaks a line inside a hyphenated name (``context-flow-ablation`` stays one word)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.wrap(text, width, break_on_hyphens=False)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        hidden = d is None or d is False or d == [] or d is argparse.SUPPRESS
        if action.option_strings and not hidden and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _integer(text: str) -> int:
    """A count on the command line; float notation is accepted when integral (``5e7``)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # a ValueError here makes argparse say "invalid integer value"
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}") from None
        return int(value)


_integer.__name__ = "integer"


def _number(text: str) -> float:
    return float(text)


_number.__name__ = "number"


def check_numbers(a: argparse.Namespace) -> None:
    """Every number option of the subcommand within its range (:meth:`_Parser.add_number`).

    Raises
    ------
    UsageError
        ``"--FLAG must be a positive integer, got 0"`` and the like, for the first one outside.
    """
    for flag, dest, rule in a.numbers:
        value = getattr(a, dest)
        if value is not None:
            check_number(value, flag, **rule)


# ---------------------------------------------------------------------------------- validation


def check_device(name: str) -> None:
    """Refuse a ``--device`` this torch cannot use
    (:func:`conceptid.models.trainer.check_device`, the trainer's own check, named as the
    option).

    Raises
    ------
    UsageError
        For a string torch does not parse as a device, CUDA on a CPU-only build or with no GPU
        visible (or an index beyond the visible ones), MPS where it is not available, and any
        other device type (the trainer runs on cpu, cuda and mps only).
    """
    from conceptid.models.trainer import check_device as trainer_check  # torch, when needed

    trainer_check(name, "--device")


def check_out(path: str, flag: str, *, directory: bool, replace: bool = False) -> Path:
    """``path`` as a Path, if an output can be written there; checked before any work.

    Parameters
    ----------
    path : str
        The output: a directory (``directory``) or a file.
    flag : str
        How the command line calls it, for the message (``"--out"``).
    replace : bool
        The output is written beside itself and renamed into place (a dataset directory), so
        its parent must be writable even when it exists.

    Raises
    ------
    UsageError
        For an empty path, a NUL byte or a name longer than 255 bytes, a file where a directory
        is needed (or the reverse), a file on the way to it, or a place without write permission
        or where the system refuses to create a file (``/proc``, ``/sys``, a read-only mount, even
        for root): a file is created there and removed again, so that every refusal comes now,
        naming ``path``, and not once the work is done.
    """
    if not path:
        raise UsageError(f"{flag} is empty")
    if "\0" in path:
        raise UsageError(f"{flag} {path!r}: a path cannot contain a NUL byte")
    out = Path(path)
    long = [part for part in out.parts if len(os.fsencode(part)) > 255]
    if long:
        raise UsageError(f"{flag}: the name {long[0][:32]}... is longer than 255 bytes")
    if out.is_symlink() and not out.exists():  # found by review: it was called "a file"
        raise UsageError(f"{flag} {out} is a broken symbolic link (to {os.readlink(out)}); "
                         "remove it or choose another path")  # fmt: skip
    if out.exists() and out.is_dir() != directory:
        kind = ("a file, not a directory", "a directory, not a file")[out.is_dir()]
        raise UsageError(f"{flag} {out} is {kind}")
    places = [out] if directory and out.is_dir() else []
    if replace or not places:
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        places.append(parent)
    for place in places:
        if not place.is_dir():
            raise UsageError(f"{flag} {out}: {place} is a file, not a directory")
        if not os.access(place, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {out}: cannot write in {place} (permission denied)")
        try:  # permissions do not tell everything (root in /proc): create a file, remove it
            fd, probe = tempfile.mkstemp(prefix=".conceptid-probe-", dir=place)
        except OSError as err:
            raise UsageError(f"{flag} {out}: the system refuses to create a file in {place} "
                             f"({err.strerror or err})") from None  # fmt: skip
        os.close(fd)
        os.unlink(probe)
    return out


def check_spec(spec: BenchmarkSpec, what: str, *, training: bool = False,
               image_sizes: bool = True):  # fmt: skip
    """The ConceptModel of ``spec``, built only once the request fits.

    Parameters
    ----------
    spec : BenchmarkSpec
    what : str
        The request, for the message (``"this run"``).
    training : bool
        Count the training tensors too (float32 copies of every row) besides generating.
    image_sizes : bool
        Refuse images of a size the models do not take (:data:`IMAGE_SIZES`).

    Raises
    ------
    UsageError
        For an image size the models do not take.
    MemoryLimitError
        When the estimate (:func:`conceptid.simulations.resources.estimate_dataset`) exceeds the
        limit.
    ConceptIDError
        The preset's or the model's own refusal of a bad argument (before anything is written).
    """
    if spec.model is not None:
        mixing = spec.model.get("mixing")
        image = isinstance(mixing, dict) and mixing.get("kind") == "image"
        size = mixing.get("size", 32) if image else None
    else:
        image = spec.preset == "quad" and spec.preset_args.get("mixing", "image") == "image"
        size = spec.preset_args.get("image_size", 32) if image else None
    if image and image_sizes and size not in IMAGE_SIZES:
        raise UsageError(f"image size {size!r} is not supported: the models take "
                         f"{' or '.join(map(str, IMAGE_SIZES))} pixels")  # fmt: skip
    est = estimate_dataset(spec)
    if est is not None:
        need = est.peak_bytes
        if training:
            need = max(need, est.array_bytes + training_bytes(est.rows, est.obs_shape))
        shape = f" ({est.rows} samples of shape {est.obs_shape})" if est.rows else ""
        # no samples (check's model alone): only a smaller model helps; else check_memory's own
        advice = {} if est.rows else {"advice": "ask for a smaller model"}
        check_memory(need, what + shape, **advice)
    return spec.build_model()  # a bad preset argument is refused now, before anything is written


def check_methods(text: str | None, images: bool | None) -> list[str] | None:
    """``--methods``: known names, at least one, none that needs vectors when the data are
    images (``images=None``: not known yet); None when not given (every method that applies)."""
    if text is None:
        return None
    parts = [m.strip() for m in text.split(",")]
    names = [m for m in parts if m]
    if not names:
        raise UsageError(f"--methods {text!r} names no method; choose from {', '.join(METHODS)}")
    if len(names) < len(parts):  # as --targets: a stray comma is a name left out
        raise UsageError(f"--methods {text!r} has an empty name")
    twice = sorted({m for m in names if names.count(m) > 1})
    if twice:
        raise UsageError(f"--methods names {', '.join(twice)} more than once")
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise UsageError(f"--methods: unknown method {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(METHODS)}")  # fmt: skip
    vectors = [m for m in names if METHODS[m].vectors_only]
    if images and vectors:
        raise UsageError(f"--methods: {', '.join(vectors)} needs vector observations; this "
                         f"benchmark holds images")  # fmt: skip
    return names


def _parse_kv(items: list[str], flag: str = "--preset-arg") -> dict:
    """``--preset-arg KEY=VALUE`` items (``flag`` names the option in messages) as a dict, each
    VALUE parsed as JSON; a VALUE that is not JSON is a bare string (``mixing=mlp``) unless it
    starts like JSON (``{``, ``[`` or ``"``), which is refused with the parser's message
    rather than passed on as a string."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        if key in out:
            raise UsageError(f"{flag} {key} is given twice; give it once")
        try:
            out[key] = json.loads(value, object_pairs_hook=unique_keys(f"{flag} {key}"))
        except json.JSONDecodeError as err:
            if value.lstrip()[:1] in ("{", "[", '"'):
                why = f"{flag} {key}: {value!r} is not valid JSON: {err}"
                raise UsageError(why) from None
            out[key] = value  # a bare string such as mlp
        except UsageError:  # a key given twice in one object
            raise
        except (ValueError, RecursionError) as err:  # valid JSON beyond the reader's limits
            raise UsageError(f"{flag} {key}: the value cannot be read: {json_limit(err)}") from None
    return out


def check_method_args(items: list[str], methods: list[str]) -> dict:
    """``--method-arg METHOD:KEY=VALUE`` items as ``{method: {key: value}}`` (each VALUE read as
    ``--preset-arg`` reads it), for the ``methods`` the command trains. The values are built
    into each model before any work by the command itself (``run``:
    :func:`conceptid.training.check_builds`; ``train``: :func:`conceptid.training.
    check_trainable`).

    Raises
    ------
    UsageError
        A malformed item, a method not trained by the command, a key given twice.
    PipelineError
        An option the method does not take or sets itself, or a value that is not JSON
        (:func:`conceptid.methods.check_options`).
    """
    from .methods import check_options

    grouped: dict[str, list[str]] = {}
    for item in items:
        name, sep, kv = item.partition(":")
        if not sep or not name or "=" not in kv:
            raise UsageError(f"--method-arg expects METHOD:KEY=VALUE (context-flow:flow_layers="
                             f"10), got {item!r}")  # fmt: skip
        if name not in METHODS:
            raise UsageError(f"--method-arg {item!r}: unknown method {name!r}; choose from "
                             f"{', '.join(METHODS)}")  # fmt: skip
        if name not in methods:
            raise UsageError(f"--method-arg {item!r}: {name} is not among the methods this "
                             f"command trains ({', '.join(methods)}; see --methods)")  # fmt: skip
        grouped.setdefault(name, []).append(kv)
    return {n: check_options(n, _parse_kv(kvs, f"--method-arg {n}:")) for n, kvs in grouped.items()}


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
            raise UsageError(
                f"{', '.join(given)} cannot be combined with --spec: put them in the spec file"
            )
        spec = BenchmarkSpec.from_json(a.spec)
        overrides = {}
    else:
        args = _parse_kv(a.preset_arg)
        if a.image_size is not None:
            if a.preset != "quad":
                raise UsageError("--image-size applies to the quad preset only")
        for key in ("image_size", "m", "mixing", "nuisance_dim"):
            v = getattr(a, key)
            if v is None:
                continue
            flag = "--" + key.replace("_", "-")
            if key in args:
                raise UsageError(f"{flag} and --preset-arg {key} both set {key}; give one")
            args[key] = v
        spec = BenchmarkSpec(preset=a.preset, preset_args=args)
        overrides = {}
    overrides.update(_per_context(a.n_per_context))
    for key in ("n_val", "n_test", "seed", "bit_generator"):
        v = getattr(a, key)
        if v is not None:
            overrides[key] = v
    if overrides:
        spec = BenchmarkSpec.from_dict({**spec.to_dict(), **overrides})
    return spec


def validate_simulate(a: argparse.Namespace) -> None:
    a.benchmark = _spec_from_args(a)
    check_out(a.out, "--out", directory=True, replace=True)
    check_spec(a.benchmark, "this benchmark")


#: the most samples per context ``inspect`` draws (images: one column each)
MAX_PER_CONTEXT = 64


def validate_inspect(a: argparse.Namespace) -> None:
    if a.no_figure:
        if a.figure is not None:
            raise UsageError("--figure and --no-figure cannot go together; give one")
        return
    if a.per_context > MAX_PER_CONTEXT:
        raise UsageError(f"--per-context must be at most {MAX_PER_CONTEXT} (the figure draws "
                         f"that many samples of each context), got {a.per_context}")  # fmt: skip
    if a.figure is not None:
        check_out(a.figure, "--figure", directory=False)  # before the report is printed
        if Path(a.figure).suffix.lower() != ".png":
            raise UsageError(f"--figure must be a .png file, got {a.figure!r}")
        if Path(a.figure).exists() and not a.overwrite:  # a file the package may not have written
            raise UsageError(f"--figure {a.figure} exists; pass --overwrite to replace it")
    elif Path(a.dir).is_dir():
        check_out(str(Path(a.dir) / "samples_per_context.png"), "DIR", directory=False)


def validate_check(a: argparse.Namespace) -> None:
    if a.source is not None and (a.preset is not None or a.preset_arg):
        flag = "--preset" if a.preset is not None else "--preset-arg"
        raise UsageError(f"{flag} applies without SOURCE only; put arguments in the spec file")


def validate_run(a: argparse.Namespace) -> None:
    check_device(a.device)
    if a.data is not None:
        given = [flag for flag, v in (("--preset-arg", a.preset_arg),
                 ("--n-per-context", a.n_per_context)) if v]  # fmt: skip
        if given:
            raise UsageError(f"{given[0]} cannot be combined with --data: the dataset is used "
                             f"as it is")  # fmt: skip
        check_methods(a.methods, images=None)
        check_out(a.out, "--out", directory=True)
        from .rundir import check_run_dir

        check_run_dir(a.out)  # before the dataset is read, let alone copied
        a.benchmark = None
        ds, a.method_list = check_training_data(a.data, a.methods)
        from .evaluation import check_evaluable
        from .rundir import check_data_of_run, is_run_dir

        check_evaluable(ds)  # the run ends in the evaluation
        if a.check_method is not None and not ds.has_ground_truth:
            raise UsageError(f"--check-method: {a.data} has no ground-truth model, so no "
                             f"identifiability check runs on it")  # fmt: skip
        if is_run_dir(a.out):
            check_data_of_run(a.out, ds, a.data)
        a.method_options = check_method_args(a.method_arg, _trained(a.method_list, ds))
        return
    if a.spec and a.preset_arg:
        raise UsageError("--preset-arg cannot be combined with --spec: put it in the spec file")
    check_methods(a.methods, images=None)  # names first: cheaper than sizing the benchmark
    a.benchmark = spec = _run_spec(a)
    empty = [k for k in ("n_train", "n_val", "n_test") if getattr(spec, k) < 1]
    if empty:
        raise UsageError(f"a run needs training, validation and test samples; the benchmark has "
                         f"{', '.join(f'{k} = 0' for k in empty)}")  # fmt: skip
    check_out(a.out, "--out", directory=True)
    from .rundir import check_no_recorded_data, check_run_dir

    check_run_dir(a.out)
    check_no_recorded_data(a.out)
    model = check_spec(spec, "this run", training=True)  # its test rows: run checks them first
    images = model.mixing.kind == "image"
    a.method_list = check_methods(a.methods, images)
    a.method_options = check_method_args(a.method_arg, _trained(a.method_list, images=images))


def _trained(method_list: list[str] | None, ds=None, images: bool | None = None) -> list[str]:
    """The methods a command trains: ``--methods``, else the default ones for the data."""
    from .methods import default_methods

    return method_list or default_methods(ds, images=images)


def check_training_data(path: str, methods: str | None):
    """The dataset in ``path``, loaded and verified, if the models can train on it; and the
    ``--methods`` list for it.

    Raises
    ------
    DatasetError
        Not a dataset, or one that fails its verification.
    UsageError
        No training or validation samples, images of a size the models do not take, a method
        that needs vectors on images, or more memory than the limit.
    """
    ds = load_dataset(path)
    empty = [s for s in ("train", "val") if not ds.mask(s).any()]
    if empty:
        raise UsageError(f"{path} holds no {' and no '.join(empty)} samples (n_{empty[0]} = 0); "
                         f"training needs both")  # fmt: skip
    images = ds.is_image
    if images and ds.x.shape[1] not in IMAGE_SIZES:
        raise UsageError(f"{path} holds {ds.x.shape[1]}x{ds.x.shape[2]} images; the models "
                         f"take {' or '.join(map(str, IMAGE_SIZES))} pixels")  # fmt: skip
    method_list = check_methods(methods, images)
    check_memory(training_bytes(len(ds.x), ds.x.shape[1:]), f"training on {path}")
    return ds, method_list


def validate_train(a: argparse.Namespace) -> None:
    check_device(a.device)
    check_out(a.out, "--out", directory=True)
    a.dataset, a.method_list = check_training_data(a.data, a.methods)
    from .rundir import check_data_of_run, is_run_dir

    if is_run_dir(a.out):
        check_data_of_run(a.out, a.dataset, a.data)
    a.method_options = check_method_args(a.method_arg, _trained(a.method_list, a.dataset))


def validate_import(a: argparse.Namespace) -> None:
    """Everything is checked and the dataset built in memory; only ``cmd_import`` writes."""
    from conceptid.simulations.imported import from_files, from_folders, parse_fractions

    if a.contexts is not None and a.arrays is None:
        raise UsageError("--contexts goes with --arrays (the JSON file naming each row's "
                         "context); --folders reads ROOT/contexts.json")  # fmt: skip
    if a.arrays is not None and a.contexts is None:
        raise UsageError("--arrays needs --contexts CTX.json: the concepts, each context's "
                         "targets and each row's context")  # fmt: skip
    digits_only = [flag for flag, v in (("--n-per-context", a.n_per_context),
                   ("--image-size", a.image_size)) if v is not None]  # fmt: skip
    if digits_only and not a.digits:
        raise UsageError(f"{digits_only[0]} applies to --digits only")
    if a.digits and a.fractions is not None:
        raise UsageError("--fractions does not apply to --digits (its splits are by source "
                         "digit: --n-per-context sets them)")  # fmt: skip
    fractions = parse_fractions(a.fractions) if a.fractions is not None else None
    out = check_out(a.out, "--out", directory=True, replace=True)
    if a.folders is not None and Path(out).resolve().is_relative_to(Path(a.folders).resolve()):
        raise UsageError(f"--out {a.out} is inside --folders {a.folders}: the next import of "
                         "that folder would read the dataset as a context folder; write it "
                         "elsewhere")  # fmt: skip
    check_save_target(out, a.overwrite)
    kw = {"seed": a.seed, "name": a.name or ""}
    if a.nuisance_dim is not None:
        kw["nuisance_dim"] = a.nuisance_dim
    if fractions is not None:
        kw["fractions"] = fractions
    if a.digits:
        from conceptid.simulations.digits import morpho_digits

        if a.n_per_context is not None:
            kw.update({"n_train": a.n_per_context, "n_val": max(1, a.n_per_context // 5),
                       "n_test": a.n_per_context})  # fmt: skip
        if a.image_size is not None:
            kw["image_size"] = a.image_size
        kw["name"] = kw["name"] or "digits"
        a.dataset = morpho_digits(**kw)
    elif a.arrays is not None:
        a.dataset = from_files(a.arrays, a.contexts, **kw)
    else:
        a.dataset = from_folders(a.folders, **kw)


def validate_evaluate(a: argparse.Namespace) -> None:
    if not Path(a.run).is_dir():
        raise UsageError(f"{a.run} is not a run directory")
    check_out(a.run, "RUN", directory=True)


def _model_file(model: str) -> Path:
    """The ``final.pt`` that ``MODEL`` of ``generate`` names (a method's folder or the file),
    or a :class:`UsageError` saying what the path is instead."""
    path = Path(model)
    final = path / "final.pt" if path.is_dir() else path
    if final.is_file() and final.name != "final.pt":
        raise UsageError(f"{path} is not a trained model: MODEL is RUN/models/METHOD or its "
                         f"final.pt")  # fmt: skip
    if final.is_file():
        return final
    if path.is_dir():
        trained = sorted(p.parent.name for p in path.glob("models/*/final.pt"))
        inner = sorted(p.parent.name for p in path.glob("*/final.pt"))
        hint = (f"; its trained models: {', '.join(f'{path}/models/{m}' for m in trained)}"
                if trained else f"; trained models in it: {', '.join(inner)}" if inner
                else "")  # fmt: skip
        raise UsageError(f"{path} holds no trained model (no final.pt): MODEL is "
                         f"RUN/models/METHOD or its final.pt{hint}")  # fmt: skip
    parent = path.parent
    there = sorted(p.parent.name for p in parent.glob("*/final.pt")) if parent.is_dir() else []
    hint = f"; trained models in {parent}: {', '.join(there)}" if there else ""
    raise UsageError(f"{path} does not exist: MODEL is RUN/models/METHOD or its final.pt{hint}")


def validate_generate(a: argparse.Namespace) -> None:
    check_out(a.out, "--out", directory=False)
    if Path(a.out).suffix not in (".npy", ".png"):
        raise UsageError(f"--out must end in .npy or .png, got {Path(a.out).name!r}")
    target = Path(a.out).resolve()  # through links: where the samples would land
    if is_dataset_dir(target.parent):  # found by review: --overwrite replaced a dataset's x.npy
        where = "is" if target == Path(a.out).absolute() else f"leads to {target},"
        raise UsageError(f"--out {a.out} {where} inside the dataset directory {target.parent}: "
                         "the samples could replace one of its arrays; write them "
                         "elsewhere")  # fmt: skip
    a.final = _model_file(a.model)
    if Path(a.out).exists() and not a.overwrite:
        raise UsageError(f"--out {a.out} exists; pass --overwrite to replace it")
    if a.targets is not None and not a.targets.strip():  # e.g. an unset shell variable
        raise UsageError("--targets is empty; leave it out for the observational context")
    names = a.targets.split(",") if a.targets is not None else []
    if any(not t.strip() for t in names):
        raise UsageError(f"--targets {a.targets!r} has an empty name")
    a.target_list = [t.strip() for t in names]


def validate_sweep(a: argparse.Namespace) -> None:
    """The sweep file, its directory, and (for the default task) every cell's data: its
    size against the memory limit and the methods against its kind, before any cell runs."""
    from .sweep import Sweep, check_sweep_dir

    check_out(a.out, "--out", directory=True)
    check_sweep_dir(a.out)
    # Sweep.from_json checks every cell (Sweep.cells(validate=True)): for the default task its
    # data and training against the memory limit, its model, and its method against the data
    a.sweep_def = Sweep.from_json(a.sweep, progress=not a.quiet)


@contextmanager
def _modules_of_cwd():
    """The current directory last on ``sys.path`` while a command runs, so that every command
    resolves a mixing saved as ``module:function`` (a model or spec file, a dataset's card,
    ``check --mixing``) from a module of the directory it runs in; last, so that a file there
    never shadows the standard library or an installed package the command imports (a
    ``fractions.py`` in the current directory stays the user's); not at all under
    ``PYTHONSAFEPATH`` (``python -P``); removed again afterwards (``main`` may be called
    in-process)."""
    try:
        cwd = os.getcwd()
    except OSError:  # the directory was removed: nothing to find there
        cwd = None
    added = cwd is not None and cwd not in sys.path and not sys.flags.safe_path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


@contextmanager
def _memory_limit(gib: float | None):
    """``--max-memory`` applies to every estimate made while the command runs (through the
    environment variable that :func:`conceptid.simulations.resources.memory_limit` reads)."""
    if gib is None:
        yield
        return
    before = os.environ.get(ENV)
    os.environ[ENV] = repr(float(gib))
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = before


# ---------------------------------------------------------------------------------- commands


def cmd_simulate(a: argparse.Namespace) -> int:
    spec = a.benchmark
    out = Path(a.out)
    check_save_target(out, a.overwrite)
    t0 = time.perf_counter()
    ds = generate(spec, progress=not a.quiet, name=a.name or "")
    ds.save(out, overwrite=a.overwrite)
    n = len(ds.context)
    print(
        f"wrote {out}: {n} samples, {len(ds.context_names)} contexts "
        f"({len(ds.held_out_contexts)} held out), "
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
    from conceptid.simulations.model import ConceptModel

    if a.source is None:
        args = _parse_kv(a.preset_arg)
        seed = a.seed if a.seed is not None else 0
        spec = BenchmarkSpec(preset=a.preset or DEFAULT_PRESET, preset_args=args, seed=seed,
                             n_train=0, n_val=0, n_test=0)  # fmt: skip
        return check_spec(spec, "this model", image_sizes=False)
    path = Path(a.source)
    if path.is_dir():
        ds = load_dataset(path)
        if not ds.has_ground_truth:
            raise UsageError(f"{path} holds imported data without a ground-truth model; the "
                             "check decides identifiability from the true model (graph, "
                             "mechanisms, mixing), so there is nothing to check")  # fmt: skip
        return ds.model
    expected = "is not valid JSON (a spec or model file, or a dataset directory, is expected)"
    data = parse_json(read_bytes(path, UsageError), str(path), DatasetError, invalid=expected)
    if isinstance(data, dict) and ("sem" in data or "mixing" in data):  # a model, not a spec
        return ConceptModel.from_dict(data)
    spec = BenchmarkSpec.from_dict(data)
    if a.seed is not None and a.seed != spec.seed:
        spec = BenchmarkSpec.from_dict({**spec.to_dict(), "seed": a.seed})
    return spec.build_model()


def cmd_check(a: argparse.Namespace) -> int:
    import numpy as np

    from conceptid.identifiability import check

    model = _load_model(a)
    if a.mixing:  # its module is found in the current directory too (_modules_of_cwd)
        from dataclasses import replace

        from conceptid.simulations.mixing import mixing_from_reference

        model = replace(model, mixing=mixing_from_reference(a.mixing, model.d))
    report = check(model, a.method, rng=np.random.default_rng(a.seed or 0))
    print(report.to_json() if a.json else report)
    return 0


def _run_spec(a: argparse.Namespace) -> BenchmarkSpec:
    if a.spec:
        spec = BenchmarkSpec.from_json(a.spec)
    else:
        base = dict(DEFAULT_RUN) if a.preset == DEFAULT_RUN["preset"] else {"preset": a.preset}
        base["preset_args"] = {**base.get("preset_args", {}), **_parse_kv(a.preset_arg)}
        spec = BenchmarkSpec.from_dict({**BenchmarkSpec(preset=a.preset).to_dict(), **base})
    over = {"seed": a.seed} if a.seed is not None else {}  # else the spec's own seed
    over.update(_per_context(a.n_per_context))
    return BenchmarkSpec.from_dict({**spec.to_dict(), **over})


def cmd_run(a: argparse.Namespace) -> int:
    from .config import RunConfig
    from .pipeline import run

    seed = a.benchmark.seed if a.benchmark is not None else a.seed or 0
    cfg = RunConfig(spec=a.benchmark, out=Path(a.out), seed=seed, epochs=a.epochs,
                    batch_size=a.batch_size, device=a.device, methods=a.method_list,
                    check_method=a.check_method or DEFAULTS.check_method,  # None: not given
                    restarts=a.restarts, retrain=a.retrain, options=a.method_options,
                    progress=not a.quiet, data=Path(a.data) if a.data else None,
                    command="conceptid " + shlex.join(a.argv))  # fmt: skip
    run(cfg)
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    ds = a.dataset  # built and checked by validate_import
    out = Path(a.out)
    ds.save(out, overwrite=a.overwrite)
    held = len(ds.held_out_contexts)
    concepts = ", ".join(ds.concept_names)
    print(f"wrote {out}: {len(ds.context)} samples, {len(ds.context_names)} contexts ({held} "
          f"held out), "
          f"x {ds.x.dtype} {tuple(ds.x.shape[1:])}, concepts {concepts}; no ground "
          f"truth")  # fmt: skip
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .methods import default_methods
    from .rundir import open_run_dir, record_data, run_lock
    from .training import check_trainable, train

    ds = a.dataset  # loaded and verified by validate_train
    out = Path(a.out)
    names = a.method_list or default_methods(ds)
    kw = {"seed": a.seed, "epochs": a.epochs, "batch_size": a.batch_size, "device": a.device,
          "restarts": a.restarts, "retrain": a.retrain}  # fmt: skip
    with run_lock(out):  # the whole command, every method: train alone holds it for one
        for name in names:  # what train would refuse stops the command before any write
            check_trainable(name, ds, out, options=a.method_options.get(name), **kw)
        # where `evaluate` and `generate` find the data, recorded before the first fit, so
        # that a run killed during it still refuses another dataset
        record_data(open_run_dir(out), ds, a.data)
        for name in names:
            t = train(name, ds, out, progress=not a.quiet, options=a.method_options.get(name),
                      **kw)  # fmt: skip
            how = "reused (trained before under the same settings)" if t.reused else "trained"
            print(f"{name}: {how}, {t.epochs_summary} -> {out / 'models' / name / 'final.pt'}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .pipeline import evaluate_dir

    evaluate_dir(Path(a.run), Path(a.data) if a.data else None, a.check_method)
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    from .rundir import run_data
    from .training import read_trained, sample

    final = a.final  # checked by validate_generate
    run_dir = final.resolve().parent.parent.parent
    ds = run_data(run_dir, a.data)
    trained = read_trained(final, ds)
    targets = a.target_list  # checked against the data by sample, before it generates
    out = Path(a.out)
    x = sample(trained, ds, targets, a.n, a.seed)  # the data's units; checks its memory first
    try:
        if out.suffix == ".png":
            from .plots import image_grid

            image_grid(x, out)
        else:
            from .rundir import write_npy

            write_npy(out, x)
    except OSError as err:  # written beside itself and renamed: nothing half-written is left
        raise UsageError(f"--out {out} cannot be written: {err.strerror or err}") from None
    if targets:
        label = "do(" + ",".join(targets) + ")"
    else:  # a model that ignores targets draws from the law it learned: the pooled one
        label = "observational" if trained.model.can_intervene else "the pooled training law"
    print(f"wrote {out}: {a.n} samples of {label} from {trained.method}")
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from .sweep import run_sweep

    res = run_sweep(a.sweep_def, a.out, scheduler=a.scheduler, workers=a.workers,
                    progress=not a.quiet)  # fmt: skip
    print(f"{res.cells} cells: {res.skipped} already finished, {res.ran} run now, "
          f"{len(res.failed)} failed ({res.seconds:.0f} s)")  # fmt: skip
    print("summary: " + ", ".join(map(str, res.summary_files)))  # those written
    if res.failed:
        _say_error(f"conceptid sweep: {len(res.failed)} cell(s) failed after "
                   f"{a.sweep_def.retries} retries; their errors are in "
                   f"{Path(a.out) / 'cells'}/*.failed.json; a rerun retries them")  # fmt: skip
        return 1
    return 0


def _methods_help() -> str:
    vectors = [name for name, m in METHODS.items() if m.vectors_only]
    asked = [name for name, m in METHODS.items() if not m.in_default]
    return (f"comma-separated, from {', '.join(METHOD_NAMES)} (default: every method that applies "
            f"but {' and '.join(asked)}, which runs when named: all the others for vectors, all "
            f"but {' and '.join(vectors)} for images)")  # fmt: skip


def _add_max_memory(p: _Parser) -> None:
    p.add_number("--max-memory", integer=False, minimum=0, exclusive=True, metavar="GIB",
                 help=f"refuse a request whose estimated memory exceeds GIB (default: the "
                      f"{ENV} environment variable, else the memory available now)")  # fmt: skip


def _add_training(p: _Parser, seed_help: str = "seed of training and evaluation",
                  seed_default: int | None = DEFAULTS.seed) -> None:  # fmt: skip
    p.add_number("--seed", minimum=0, default=seed_default, help=seed_help)
    p.add_number("--epochs", default=DEFAULTS.epochs, help="training epochs per method")
    p.add_number("--batch-size", default=DEFAULTS.batch_size, help="training batch size")
    p.add_number("--restarts", default=DEFAULTS.restarts,
                 help="fits per method from different seeds; the best is kept")  # fmt: skip
    p.add_argument("--device", default=DEFAULTS.device,
                   help="cpu, cuda, cuda:N or mps (checked before anything runs)")  # fmt: skip
    p.add_argument("--methods", help=_methods_help())
    p.add_argument("--method-arg", action="append", default=[], metavar="METHOD:KEY=VALUE",
                   help="a construction option of one method, VALUE parsed as JSON "
                        "(repeatable; e.g. context-flow:flow_layers=10; the options of each "
                        "method: docs/cli.md); recorded with the model, so a saved model is "
                        "reused only under the same options")  # fmt: skip
    p.add_argument("--retrain", action="store_true",
                   help="discard each method's saved model and checkpoints (nothing else) and "
                        "train afresh; without it, a model trained under other settings stops "
                        "the command")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each subcommand sets ``func`` (the work) and ``validate``
    (every check of its arguments, run first)."""
    p = _Parser(prog="conceptid", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"conceptid {__version__}",
                   help="print the version and exit")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    presets = ", ".join(PRESET_NAMES)

    s = sub.add_parser("simulate", help="generate a benchmark dataset directory",
                       description="Generate a benchmark dataset (arrays, card with the ground "
                       "truth) from a preset or a spec file.", epilog=EPILOG)  # fmt: skip
    src = s.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=PRESET_NAMES, default=DEFAULT_PRESET,
                     help=f"a built-in benchmark: {presets}")  # fmt: skip
    src.add_argument("--spec", metavar="FILE",
                     help="a BenchmarkSpec JSON file (docs/cli.md, 'The spec format'; for example "
                          "examples/spec_chain.json)")  # fmt: skip
    s.add_argument("--out", required=True, help="dataset directory to write (atomically)")
    s.add_number("--n-per-context", help="training samples per context (validation and test: "
                 "a quarter each, at least 1; default: the spec's, else 2000)")  # fmt: skip
    s.add_number("--n-val", minimum=0, help="validation samples per context")
    s.add_number("--n-test", minimum=0, help="test samples per context")
    s.add_number("--seed", minimum=0, help="seed of the model and of every sample (default 0)")
    s.add_argument("--bit-generator", choices=sorted(BIT_GENERATORS),
                   help="numpy bit generator of every stream (default pcg64; sfc64 draws faster "
                        "but gives other data for the same seed)")  # fmt: skip
    s.add_argument("--image-size", type=int, choices=IMAGE_SIZES, metavar="{32,64}",
                   help="quad: image width and height in pixels")  # fmt: skip
    s.add_number("--m", help="chain/random: number of concepts")
    s.add_argument(
        "--mixing", help="identity | linear | mlp (chain/random); image | identity (quad)"
    )
    s.add_number("--nuisance-dim", minimum=0, help="chain/random: nuisance dimensions")
    s.add_argument("--preset-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="any other preset argument, VALUE parsed as JSON (repeatable)")  # fmt: skip
    s.add_argument("--name", help="dataset name recorded in the card")
    s.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_max_memory(s)
    s.set_defaults(func=cmd_simulate, validate=validate_simulate)

    i = sub.add_parser("inspect", help="print a dataset's card and statistics, plot samples",
                       epilog=EPILOG)  # fmt: skip
    i.add_argument("dir", metavar="DIR", help="a dataset directory")
    i.add_argument("--figure", help="PNG path (default DIR/samples_per_context.png)")
    i.add_number("--per-context", default=8, help="samples per context in the figure (at most 64)")
    i.add_argument("--no-figure", action="store_true", help="print only; write no figure")
    i.add_argument("--overwrite", action="store_true", help="replace an existing --figure file")
    i.set_defaults(func=cmd_inspect, validate=validate_inspect)

    c = sub.add_parser("check", epilog=EPILOG,
                       help="decide identifiability of a model's concepts (per concept and per "
                            "assumption)")  # fmt: skip
    c.add_argument("source", nargs="?", metavar="SOURCE",
                   help="a spec JSON, a model JSON (ConceptModel.to_dict), or a dataset "
                        "directory (default: --preset)")  # fmt: skip
    c.add_argument("--preset", choices=PRESET_NAMES,
                   help=f"a built-in model, without SOURCE: {presets} (default "
                        f"{DEFAULT_PRESET})")  # fmt: skip
    c.add_argument("--preset-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a preset argument, VALUE parsed as JSON (repeatable)")  # fmt: skip
    c.add_number("--seed", minimum=0,
                 help="seed of the model and of the numeric searches (default: the spec's, "
                      "else 0)")  # fmt: skip
    c.add_argument("--method", choices=CHECK_METHODS, default=DEFAULTS.check_method,
                   help="arithmetic of every rank decision")  # fmt: skip
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument(
        "--mixing", metavar="MODULE:FUNCTION",
        help="replace the model's mixing by your own: a function of the embedding e (n, d) "
        "(or a Mixing instance), e.g. mypkg.scenes:render",
    )  # fmt: skip
    _add_max_memory(c)  # its refusal of a model too large to check names this option
    c.set_defaults(func=cmd_check, validate=validate_check)

    m = sub.add_parser("import", epilog=EPILOG,
                       help="a dataset directory from your own data (arrays, or a folder of "
                            "images per context) or from real handwritten digits",
                       description="Import intervention data without ground truth into a "
                       "dataset directory (card, hashes), checked before anything is written. "
                       "Each sample is labelled with its context's targets; docs/data.md gives "
                       "the JSON format.")  # fmt: skip
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--arrays", metavar="X.npy",
                     help="observations: float (N, p) vectors or uint8 (N, H, W, 3) images, "
                          "with --contexts")  # fmt: skip
    src.add_argument(
        "--folders",
        metavar="ROOT",
        help="ROOT/contexts.json and one folder of PNG images per context",
    )
    src.add_argument("--digits", action="store_true",
                     help="contexts made from scikit-learn's handwritten digits by image "
                          "operations, Morpho-MNIST style (pip install "
                          "conceptid[digits])")  # fmt: skip
    m.add_argument("--contexts", metavar="CTX.json",
                   help="with --arrays: the concepts, each context's targets, each row's context "
                        "(labels) and optionally held_out and split")  # fmt: skip
    m.add_argument("--out", required=True, help="dataset directory to write (atomically)")
    m.add_number("--seed", minimum=0, default=0, help="seed of the drawn splits (and digits)")
    m.add_argument("--fractions", metavar="TRAIN,VAL,TEST",
                   help=f"split fractions of each training context (default: "
                        f"{','.join(map(str, DEFAULT_FRACTIONS))}); held-out contexts are "
                        f"test-only")  # fmt: skip
    m.add_number(
        "--nuisance-dim",
        minimum=0,
        help="nuisance size of the models trained on it (default: 2; digits 8)",
    )
    m.add_number("--n-per-context", help="--digits: training and test images per context "
                 "(validation: a fifth; default 500)")  # fmt: skip
    m.add_argument("--image-size", type=int, choices=IMAGE_SIZES, metavar="{32,64}",
                   help="--digits: image width and height in pixels (default 32)")  # fmt: skip
    m.add_argument("--name", help="dataset name recorded in the card")
    m.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    _add_max_memory(m)
    m.set_defaults(func=cmd_import, validate=validate_import)

    r = sub.add_parser("run", help="the main job: benchmark, check, train, evaluate, report",
                       epilog=EPILOG)  # fmt: skip
    src = r.add_mutually_exclusive_group()
    src.add_argument("--preset", choices=PRESET_NAMES, default=DEFAULT_RUN["preset"],
                     help=f"a built-in benchmark: {presets}; {DEFAULT_RUN['preset']} runs at "
                          f"{DEFAULT_RUN['preset_args']['image_size']}x"
                          f"{DEFAULT_RUN['preset_args']['image_size']} with "
                          f"{DEFAULT_RUN['n_train']} training and {DEFAULT_RUN['n_test']} "
                          "test samples per context")  # fmt: skip
    src.add_argument("--spec", metavar="FILE",
                     help="a BenchmarkSpec JSON file (docs/cli.md, 'The spec format')")  # fmt: skip
    src.add_argument("--data", metavar="DIR",
                     help="an existing dataset directory (generated, or imported with `conceptid "
                          "import`), copied into OUT/data and used as it is")  # fmt: skip
    r.add_argument("--preset-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a preset argument, VALUE parsed as JSON (repeatable)")  # fmt: skip
    r.add_number(
        "--n-per-context", help="training samples per context (validation and test: a quarter each)"
    )
    r.add_argument("--out", default=DEFAULTS.out, help="run directory")
    _add_training(r, "seed of the benchmark, training and evaluation (default: the spec's, "
                     "else 0)", seed_default=None)  # fmt: skip
    r.add_argument("--check-method", choices=CHECK_METHODS, default=None,
                   help=f"arithmetic of the identifiability check (default: "
                        f"{DEFAULTS.check_method}; not with --data without a ground truth, "
                        f"where no check runs)")  # fmt: skip
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_max_memory(r)
    r.set_defaults(func=cmd_run, validate=validate_run)

    t = sub.add_parser("train", help="train methods on a dataset into RUN/models/METHOD",
                       epilog=EPILOG)  # fmt: skip
    t.add_argument("data", metavar="DATA", help="a dataset directory")
    t.add_argument("--out", required=True, help="run directory")
    _add_training(t)
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_max_memory(t)
    t.set_defaults(func=cmd_train, validate=validate_train)

    e = sub.add_parser("evaluate", help="metrics, figures and report of a run's trained models",
                       epilog=EPILOG)  # fmt: skip
    e.add_argument("run", metavar="RUN", help="run directory (with models/*/final.pt)")
    e.add_argument(
        "--data",
        help="dataset directory (default RUN/data, else the one `train` recorded in RUN/run.json)",
    )
    e.add_argument("--check-method", choices=CHECK_METHODS, default=None,
                   help=f"arithmetic of the identifiability check (default: "
                        f"{DEFAULTS.check_method}; not for data without a ground truth, where "
                        f"no check runs)")  # fmt: skip
    _add_max_memory(e)
    e.set_defaults(func=cmd_evaluate, validate=validate_evaluate)

    g = sub.add_parser("generate", help="samples of a trained model under any set of targets",
                       epilog=EPILOG)  # fmt: skip
    g.add_argument("model", metavar="MODEL", help="RUN/models/METHOD (or its final.pt)")
    g.add_argument(
        "--targets",
        default=None,
        help="comma-separated concepts to intervene on (left out: observational; from a model "
        "that cannot intervene, the pooled law it learned)",
    )
    g.add_number("--n", default=16, help="number of samples")
    g.add_number("--seed", minimum=0, default=0, help="seed of the samples")
    g.add_argument(
        "--data",
        help="dataset directory (default RUN/data, else the one `train` recorded in RUN/run.json)",
    )
    g.add_argument("--out", required=True, help="a .npy file, or .png for images")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    _add_max_memory(g)
    g.set_defaults(func=cmd_generate, validate=validate_generate)

    w = sub.add_parser(
        "sweep", epilog=EPILOG, help="a grid of benchmarks x methods x settings x seeds, on Dask"
    )
    w.add_argument("sweep", metavar="SWEEP", help="a sweep JSON file (docs/sweeps.md)")
    w.add_argument(
        "--out",
        required=True,
        help="sweep directory; finished cells are kept there and skipped on a rerun",
    )
    w.add_number("--workers", help="worker processes of the LocalCluster, one torch thread "
                 "each; never more than the cells left to run (default: 2)")  # fmt: skip
    w.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler (tcp://HOST:8786) instead of a "
                   "LocalCluster")  # fmt: skip
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_max_memory(w)
    w.set_defaults(func=cmd_sweep, validate=validate_sweep)
    return p


def _say_error(line: str) -> None:
    print(" ".join(str(line).split()), file=sys.stderr)  # one line, whatever the message holds


def main(argv: list[str] | None = None) -> int:
    """Run one command line (default ``sys.argv[1:]``) and return its exit status.

    0: done (also ``--help`` and ``--version``); 2: bad input, any ConceptIDError, printed as
    one line ``conceptid COMMAND: error: MESSAGE`` on stderr, with nothing written (every
    argument is validated first); 130: interrupted (Ctrl-C), one line; 141: the reader of stdout
    went away (``| head``), nothing printed; 1: the operating system refused (a full disk), one
    line. Any other exception is a bug and propagates with its traceback.
    """
    parser = build_parser()
    prog = parser.prog
    try:
        try:
            a, extra = parser.parse_known_args(argv)
            a.argv = list(sys.argv[1:] if argv is None else argv)  # for a report's command line
        except SystemExit as done:  # --help and --version print and exit (only these)
            return done.code if isinstance(done.code, int) else 0
        prog = f"{parser.prog} {a.command}"
        if extra:  # argparse would blame the top-level parser; name the subcommand
            raise ArgumentsError(prog, f"unrecognized arguments: {' '.join(extra)}")
        check_numbers(a)
        with _memory_limit(getattr(a, "max_memory", None)), _modules_of_cwd():
            try:
                a.validate(a)
            except OSError as err:  # a path given that the system refuses (a name too long)
                raise UsageError(f"{err.filename or ''}: {err.strerror or err}") from None
            status = a.func(a)
            sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
            return status
    except ArgumentsError as err:
        _say_error(f"{err.prog}: error: {err} (see {err.prog} --help)")
        return 2
    except ConceptIDError as err:
        _say_error(f"{prog}: error: {err}")
        return 2
    except KeyboardInterrupt:
        _say_error(f"{prog}: interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): nothing more to say, and Python's own flush at exit
        # must not fail either, so stdout now goes to /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # the status of a process killed by SIGPIPE
    except OSError as err:  # the machine refused (a full disk, a lost mount): not a bug
        _say_error(f"{prog}: error: {err}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
