"""Benchmark: vectorised quad-scene rendering against the per-image loop.

Renders the same random scenes (standard normal e with concepts and nuisance, seeded with
``np.random.default_rng(0)``) with ``conceptid.simulations.render.render_quad`` (numpy broadcasting
over
the batch, float32) and with its peer ``render_quad_loop`` (a plain Python loop over images,
numpy per image), and prints images per second for each and their ratio, measured in this run.
Each timing is the best of ``--repeats`` interleaved runs (time.perf_counter); the loop renders
a quarter of the images, and rates are per image.

Run: ``python benchmarks/bench_render.py [--n 2000] [--size 64]``.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _args import at_least, parser

try:
    from conceptid.simulations.render import (
        QUAD_CONCEPTS,
        QUAD_NUISANCE,
        render_quad,
        render_quad_loop,
    )
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conceptid.simulations.render import (
        QUAD_CONCEPTS,
        QUAD_NUISANCE,
        render_quad,
        render_quad_loop,
    )


def best_times(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best wall-clock time of each of ``fns`` over ``repeats`` rounds, in seconds.

    The functions run interleaved, one call each per round, so that both see the same machine
    load; the minimum over rounds filters out interruptions.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=2000, help="images for render_quad")
    ap.add_argument("--size", type=int, default=64, help="image width and height, pixels")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the best is kept")
    args = ap.parse_args(argv)
    at_least(ap, args, ("n",), minimum=4)
    at_least(ap, args, ("size",), minimum=8)
    at_least(ap, args, ("repeats",))

    rng = np.random.default_rng(0)
    e = rng.normal(size=(args.n, len(QUAD_CONCEPTS) + len(QUAD_NUISANCE)))
    n_loop = args.n // 4
    e_loop = e[:n_loop]

    # Correctness first: both implementations on the loop's images.
    max_diff = float(
        np.abs(render_quad(e_loop, args.size) - render_quad_loop(e_loop, args.size)).max()
    )

    t_vec, t_loop = best_times(
        [lambda: render_quad(e, args.size), lambda: render_quad_loop(e_loop, args.size)],
        args.repeats,
    )
    rate_vec = args.n / t_vec
    rate_loop = n_loop / t_loop

    bytes_uint8 = args.size * args.size * 3
    size, repeats = args.size, args.repeats
    print(f"quad-scene rendering, {size}x{size} RGB, best of {repeats} interleaved runs")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print()
    print(f"{'renderer':<34}{'images':>8}{'best time (s)':>15}{'images/s':>12}")
    print(f"{'render_quad (vectorised, float32)':<34}{args.n:>8}{t_vec:>15.4f}{rate_vec:>12.0f}")
    print(f"{'render_quad_loop (per image)':<34}{n_loop:>8}{t_loop:>15.4f}{rate_loop:>12.0f}")
    print()
    print(f"ratio vectorised / per-image loop (images/s): {rate_vec / rate_loop:.1f}x")
    print(
        f"max |vectorised - loop| over {n_loop} images: {max_diff:.2e} (channel values in [0, 1])"
    )
    print(
        f"storage: {bytes_uint8} bytes per image as uint8 "
        f"({4 * bytes_uint8} as float32); {args.n} images = {args.n * bytes_uint8 / 2**20:.1f} MiB"
        " as uint8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
