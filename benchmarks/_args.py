"""Command-line checks shared by the benchmark scripts, run right after ``parse_args`` and before
any work: a bad argument is refused in one line naming it, with exit status 2 (``ap.error``:
argparse's usage, then ``prog: error: ...``).

The scripts run as ``python benchmarks/bench_x.py``, which puts this folder on ``sys.path``:
they import these as ``from _args import ...``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Collection, Iterable, Mapping

from conceptid.simulations.errors import UsageError
from conceptid.simulations.validation import json_limit, unique_keys


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with the script's docstring as written and the options' defaults."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        d = action.default
        if d is None or isinstance(d, bool) or (isinstance(d, str | list) and not d):
            return action.help  # None, a flag's False, "" or [] say nothing
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def add_argument(self, *args, **kwargs):
        # argparse shows a default only beside a help text: an option without one gets its
        # default as its help (a flag's False, and a default of None or "", say nothing)
        flag = kwargs.get("action") in ("store_true", "store_false")
        if "help" not in kwargs and not flag and kwargs.get("default") not in (None, ""):
            kwargs["help"] = "(default: %(default)s)"
        return super().add_argument(*args, **kwargs)


def parser(doc: str) -> argparse.ArgumentParser:
    """The scripts' argument parser: the script's docstring as its description, as written,
    and every option's default in ``--help``."""
    return _Parser(description=doc.strip(), formatter_class=_Help)


def at_least(
    ap: argparse.ArgumentParser, a: argparse.Namespace, names: Iterable[str], minimum: int = 1
) -> None:
    """Refuse any of the options ``names`` (attributes of ``a``) below ``minimum``."""
    for name in names:
        value = getattr(a, name)
        if value < minimum:
            ap.error(f"--{name.replace('_', '-')} must be at least {minimum}, got {value}")


def int_list(
    ap: argparse.ArgumentParser, flag: str, text: str, minimum: int | None = None
) -> list[int]:
    """``text``, integers separated by commas, as a list; with ``minimum``, each at least it."""
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        ap.error(f"{flag} takes integers separated by commas, got {text!r}")
    if minimum is not None and min(values) < minimum:
        bound = "non-negative" if minimum == 0 else f"at least {minimum}"
        ap.error(f"{flag} must be {bound}, got {text!r}")
    return values


def float_list(ap: argparse.ArgumentParser, flag: str, text: str) -> list[float]:
    """``text``, finite numbers separated by commas, as a list."""
    try:
        values = [float(s) for s in text.split(",")]
    except ValueError:
        ap.error(f"{flag} takes numbers separated by commas, got {text!r}")
    if not all(math.isfinite(v) for v in values):
        ap.error(f"{flag} must be finite, got {text!r}")
    return values


def name_list(
    ap: argparse.ArgumentParser, flag: str, text: str, known: Collection[str], what: str
) -> list[str]:
    """``text``, names separated by commas, as a list; each one of ``known`` (a ``what``)."""
    names = text.split(",")
    if "" in names:
        ap.error(f"{flag} takes names separated by commas, got {text!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        ap.error(f"{flag}: unknown {what}(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def vector_methods_on_images(
    ap: argparse.ArgumentParser, methods: list[str], known: Mapping, where: str
) -> None:
    """Refuse the ``methods`` that need vector observations (``known[m].vectors_only``, a
    registry such as ``conceptid.methods.METHODS``) on image data; ``where`` says so."""
    vectors = [m for m in methods if known[m].vectors_only]
    if vectors:
        ap.error(f"--methods: {', '.join(vectors)} need(s) vector observations; {where}")


def key_json(ap: argparse.ArgumentParser, flag: str, items: list[str]) -> dict:
    """``KEY=JSON`` items as a dict; a malformed one is refused (exit 2) naming ``flag``."""
    out = {}
    for kv in items:
        key, eq, value = kv.partition("=")
        if not key or not eq:
            ap.error(f"{flag} takes KEY=JSON, got {kv!r}")
        try:
            out[key] = json.loads(value, object_pairs_hook=unique_keys(f"{flag} {key}"))
        except json.JSONDecodeError as err:
            ap.error(f"{flag} {key}: {value!r} is not JSON ({err.msg}); a string needs quotes")
        except UsageError as err:  # a key given twice in one object
            ap.error(str(err))
        except (ValueError, RecursionError) as err:  # valid JSON beyond the reader's limits
            ap.error(f"{flag} {key}: the value cannot be read: {json_limit(err)}")
    return out
