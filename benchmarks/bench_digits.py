"""Real digits: the context module as exact prior against the pooled VAE and its own ablation.

The data are scikit-learn's handwritten digits under Morpho-MNIST-style operations
(:func:`conceptid.simulations.digits.morpho_digits`: one context per operation, the plain digits as
the
observational context, and composed operations held out of training). There are no true
concepts, so only distributions are compared: for each context the SWD between generated and
test images (concept SWD over the six training interventions and the plain digits, composition
SWD over the held-out compositions).

Every SWD here is measured at one sample size, against one half of the context's test images:
the test images of context ``k`` are split into two random halves ``A_k`` and ``B_k`` of ``h``
images each, and the table prints, against ``B_k``,

- the *same-context floor* ``SWD(A_k, B_k)``: two samples of the same law, what a perfect
  generator would score at this size;
- the *observational floor* ``SWD(A_obs, B_k)`` (``h`` plain test digits): what ignoring the
  labels costs at best;
- each method's ``SWD(h generated images, B_k)``.

(The pipeline's ``evaluate`` compares 500 generated images with all test images, so its numbers
are lower than these half-size ones.) All three methods are trained by the same trainer on the same
data and budget; the PNG shows, per context, test images and the samples of each method.

Run: ``.venv/bin/python benchmarks/bench_digits.py [--seeds 0] [--epochs 20] [--n 500]
[--image-size 32] [--nuisance-dim 8] [--threads 2] [--figure runs/bench_digits/samples.png]``
(needs scikit-learn: ``pip install 'conceptid[digits]'``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _args import at_least, int_list, name_list, parser, vector_methods_on_images

from conceptid.cli import check_device
from conceptid.modelcheck import applies_to, noise_check
from conceptid.models.data import targets_mask
from conceptid.models.metrics import sliced_wasserstein
from conceptid.pipeline import METHODS, splits, train_method
from conceptid.simulations.digits import OPERATIONS, morpho_digits
from conceptid.simulations.errors import UsageError
from conceptid.training import generate_samples

METHOD_NAMES = ("context-flow", "context-flow-ablation", "pooled")


def halves(data, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of context ``k``'s rows of ``data`` (evaluation units)."""
    x = data.x[(data.context == k)].numpy()
    x = x[rng.permutation(len(x))]
    h = len(x) // 2
    return x[:h], x[h : 2 * h]


def measure(ds, models: dict, seed: int) -> tuple[list[dict], dict]:
    """Per context: the two floors and each model's SWD against the same half, at one size;
    and the generated images (for the figure)."""
    _, (_, _, te, held) = splits(ds)
    masks = targets_mask(ds)
    rng = np.random.default_rng(seed)
    obs = ds.observational_contexts[0]
    obs_a, obs_b = halves(te, obs, rng)
    rows, generated = [], {}
    # the models the noise check applies to (a context it skips prints as nan)
    checked = [name for name, model in models.items() if applies_to(model)]
    for k, cname in enumerate(ds.context_names):
        held_out = ds.is_held_out(k)
        # the plain digits' own halves, so that A_obs never shares an image with B_k
        a, b = (obs_a, obs_b) if k == obs else halves(held if held_out else te, k, rng)
        h = len(b)
        row = {"context": cname, "held_out": held_out, "n": h,
               "same": sliced_wasserstein(a, b, seed=seed),
               "observational": sliced_wasserstein(obs_a[:h], b, seed=seed)}  # fmt: skip
        t = torch.from_numpy(np.repeat(masks[k][None], h, 0))
        for name, model in models.items():
            gen = generate_samples(model, t, seed + k)
            row[name] = sliced_wasserstein(gen.reshape(h, -1), b.reshape(h, -1), seed=seed)
            generated[(cname, name)] = gen[:4]
        generated[(cname, "data")] = b[:4]
        for name in checked:  # the noise check, on all the context's test rows
            nc = noise_check(models[name], held if held_out else te, [k], ds.context_names)
            row[f"noise {name}"] = np.nan if nc is None else nc["statistic_per_dof"]
        rows.append(row)
    return rows, generated


def figure(path: Path, ds, generated: dict, names) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ["data", *names]
    contexts = ds.context_names
    size = (0.62 * 4 * len(groups) + 1.6, 0.66 * len(contexts))
    fig, axes = plt.subplots(len(contexts), 4 * len(groups), figsize=size)
    for r, ctx in enumerate(contexts):
        for g, group in enumerate(groups):
            for i in range(4):
                ax = axes[r, 4 * g + i]
                ax.set_xticks([])
                ax.set_yticks([])
                imgs = generated[(ctx, group)]
                if i < len(imgs):
                    ax.imshow(np.clip(imgs[i].transpose(1, 2, 0), 0, 1))
                if r == 0 and i == 0:
                    ax.set_title("test data" if group == "data" else group, fontsize=7, loc="left")
        held = " (held out)" if ds.is_held_out(r) else ""
        axes[r, 0].set_ylabel(ctx + held, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _block_sizes(ap: argparse.ArgumentParser, text: str) -> dict[str, int]:
    """``--block-sizes`` (``OP=W,...``) as a dict: each ``OP`` an operation, given once, each
    ``W`` an integer of at least 1."""
    blocks: dict[str, int] = {}
    for kv in text.split(",") if text else ():
        op, eq, width = kv.partition("=")
        if not eq:
            ap.error(f"--block-sizes takes OP=W separated by commas, got {text!r}")
        if op not in OPERATIONS:
            ap.error(f"--block-sizes: unknown operation {op!r}; known: {', '.join(OPERATIONS)}")
        if op in blocks:
            ap.error(f"--block-sizes: {op} given twice in {text!r}")
        try:
            blocks[op] = int(width)
        except ValueError:
            ap.error(f"--block-sizes {op}: the width must be an integer, got {width!r}")
        if blocks[op] < 1:
            ap.error(f"--block-sizes {op}: the width must be at least 1, got {blocks[op]}")
    return blocks


def _check_figure(ap: argparse.ArgumentParser, path: str) -> None:
    """Refuse a ``--figure`` whose suffix names a format matplotlib does not write."""
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix[1:].lower()  # none: matplotlib's default format
    if suffix and suffix not in kinds:
        ap.error(f"--figure {path}: matplotlib cannot write .{suffix} files; it writes "
                 f"{', '.join(sorted(kinds))}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n", type=int, default=500, help="training and test images per context")
    ap.add_argument("--image-size", type=int, default=32, choices=(32, 64))
    ap.add_argument("--nuisance-dim", type=int, default=8)
    ap.add_argument("--block-sizes", default="", metavar="OP=W,...",
                    help="concept widths other than 1, e.g. shift=2,swelling=3")  # fmt: skip
    ap.add_argument("--methods", default=",".join(METHOD_NAMES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--figure", default="runs/bench_digits/samples.png",
                    help="PNG of test and generated images per context (several seeds: one "
                         "each, the seed before .png)")  # fmt: skip
    a = ap.parse_args(argv)
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    at_least(ap, a, ("epochs", "n", "threads"))
    at_least(ap, a, ("nuisance_dim",), minimum=0)
    blocks = _block_sizes(ap, a.block_sizes)
    names = name_list(ap, "--methods", a.methods, METHODS, "method")
    vector_methods_on_images(ap, names, METHODS, "the digits are images")
    try:
        check_device(a.device)
    except UsageError as err:
        ap.error(str(err))
    _check_figure(ap, a.figure)
    torch.set_num_threads(a.threads)
    results: list[list[dict]] = []
    seconds: dict = {n: [] for n in names}
    for seed in seeds:
        try:  # its own checks (--n within each split's pool of source digits, scikit-learn
            # installed) come before any image is made: the first seed meets them, before any work
            ds = morpho_digits(n_train=a.n, n_val=max(50, a.n // 5), n_test=a.n, seed=seed,
                               image_size=a.image_size, nuisance_dim=a.nuisance_dim,
                               block_sizes=blocks)  # fmt: skip
        except UsageError as err:
            ap.error(str(err))
        data_splits = splits(ds)
        models = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                t0 = time.perf_counter()
                model, _ = train_method(name, ds, Path(tmp), seed=seed, epochs=a.epochs,
                                        device=a.device, progress=False,
                                        data_splits=data_splits)  # fmt: skip
                models[name] = model.to("cpu").eval()
                seconds[name].append(time.perf_counter() - t0)
                print(f"seed {seed} {name}: trained in {seconds[name][-1]:.0f} s", flush=True)
        rows, generated = measure(ds, models, seed)
        results.append(rows)
        fig = Path(a.figure)
        fig = fig.with_name(f"{fig.stem}_seed{seed}{fig.suffix}") if len(seeds) > 1 else fig
        figure(fig, ds, generated, names)
        print(f"seed {seed}: figure {fig}", flush=True)

    print(f"\ndigits ({a.image_size}x{a.image_size}, scikit-learn load_digits under "
          f"Morpho-MNIST-style operations), {a.n} training / {a.n} test images per context, "
          f"{a.epochs} epochs, seeds {seeds}, nuisance dim {a.nuisance_dim}, block sizes "
          f"{a.block_sizes or 'all 1'}, {a.threads} torch threads; SWD against half the "
          f"context's test images ({results[0][0]['n']} images), means over seeds")  # fmt: skip
    cols = ["same", "observational", *names]
    print(f"{'context':<24}" + "".join(f"{c[:21]:>22}" for c in cols))

    def mean(rows_of_seed, key, ctx):
        return float(np.mean([next(r[key] for r in rs if r["context"] == ctx)
                              for rs in rows_of_seed]))  # fmt: skip

    for r in results[0]:
        held = " *" if r["held_out"] else ""
        print(f"{r['context'] + held:<24}"
              + "".join(f"{mean(results, c, r['context']):>22.4f}" for c in cols))  # fmt: skip
    summary = {}
    for kind, held in (("concept SWD", False), ("composition SWD", True)):
        ctxs = [r["context"] for r in results[0] if r["held_out"] == held]
        summary[kind] = {c: float(np.mean([mean(results, c, x) for x in ctxs])) for c in cols}
        print(f"{kind + ' (mean)':<24}" + "".join(f"{summary[kind][c]:>22.4f}" for c in cols))
    print(
        "(* held out: a composition never seen in training; floors: same = two halves of the "
        "context's test images, observational = plain digits against the context)"
    )
    noisy = [c for c in results[0][0] if c.startswith("noise ")]
    if noisy:
        print("\nnoise check (conceptid.modelcheck; needs no ground truth): Bartlett's statistic "
              "of each model's exogenous noise over its degrees of freedom, per context, on all "
              "its test images (about 1 when the noise is independent)")  # fmt: skip
        print(f"{'context':<24}" + "".join(f"{c[6:][:21]:>22}" for c in noisy))
        for r in results[0]:
            held = " *" if r["held_out"] else ""
            print(f"{r['context'] + held:<24}"
                  + "".join(f"{mean(results, c, r['context']):>22.2f}" for c in noisy))  # fmt: skip
    for peer in ("pooled", "context-flow-ablation"):
        if "context-flow" in names and peer in names:
            ratios = ", ".join(f"{kind} {summary[kind]['context-flow'] / summary[kind][peer]:.2f}x"
                               for kind in summary)  # fmt: skip
            print(f"{METHODS['context-flow'].label} vs {METHODS[peer].label}: {ratios}")
    print("train time per method [s]: "
          + ", ".join(f"{n} {np.mean(s):.0f}" for n, s in seconds.items()))  # fmt: skip


if __name__ == "__main__":
    main()
