"""Figures for the command line (matplotlib, Agg backend, atomic PNG writes)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from conceptid.simulations.atomic import atomic_path
from conceptid.simulations.benchmark import SPLITS, Dataset
from conceptid.simulations.errors import UsageError


def _atomic_savefig(fig, path: Path) -> Path:
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return Path(path)


def samples_grid(
    ds: Dataset, path: str | os.PathLike, *, per_context: int = 8, seed: int = 0
) -> Path:
    """A PNG of samples per context: images in a grid (rows = contexts), or, for vector data,
    histograms of every concept per context against the observational context (for data
    without ground-truth concepts, of the observations' first principal components)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    names = ds.context_names
    rows = []
    for k, name in enumerate(names):
        split = "test" if ds.card["contexts"][k]["held_out"] else "train"
        idx = np.flatnonzero(ds.mask(split, k))
        if not idx.size:  # e.g. a dataset generated with n_train = 0: take any split
            split, idx = "any split", np.flatnonzero(ds.mask(None, k))
        if idx.size:
            rows.append((name, split, idx))
    if not rows:
        raise UsageError("the dataset has no samples to plot")
    if ds.card["observation"]["kind"] == "image":
        ncol = per_context
        fig, axes = plt.subplots(len(rows), ncol, figsize=(1.1 * ncol + 1.5, 1.1 * len(rows)))
        axes = np.atleast_2d(axes)
        for r, (name, split, idx) in enumerate(rows):
            pick = rng.choice(idx, size=min(ncol, idx.size), replace=False)
            for c in range(ncol):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c < pick.size:
                    ax.imshow(ds.x[pick[c]])
            axes[r, 0].set_ylabel(
                f"{name}\n({split})", rotation=0, ha="right", va="center", fontsize=7
            )
        fig.suptitle("samples per context")
    else:
        if ds.has_ground_truth:
            values = np.asarray(ds.concepts)
            labels = [
                name if k == 1 else f"{name}[{i}]"
                for name, k in zip(ds.card["concept_names"], ds.card["block_sizes"])
                for i in range(k)
            ]
            what = "concept marginals"
        else:  # no concepts to show: the directions along which the observations vary most
            x = np.asarray(ds.x, dtype=np.float64)
            x = x - x.mean(0)
            # the directions from at most 5000 rows: an SVD of every row would cost more than
            # the figure is worth on a large dataset
            basis = x[rng.permutation(len(x))[:5000]]
            pcs = np.linalg.svd(basis, full_matrices=False)[2][: min(4, x.shape[1])]
            values = x @ pcs.T
            labels = [f"PC{j + 1} of x" for j in range(len(pcs))]
            what = "principal components of the observations"
        K = values.shape[1]
        fig, axes = plt.subplots(
            len(rows), K, figsize=(1.6 * K + 1.5, 1.0 * len(rows)), sharex="col"
        )
        axes = np.atleast_2d(axes)
        plain = [c["name"] for c in ds.card["contexts"] if not c["targets"]]
        ref = next((row for row in rows if row[0] in plain), rows[0])
        obs = values[ref[2]]
        for r, (name, split, idx) in enumerate(rows):
            for j in range(K):
                ax = axes[r, j]
                # trim outliers only when there are enough samples for percentiles to mean much
                q = [0.5, 99.5] if len(values) >= 200 else [0.0, 100.0]
                lo, hi = np.percentile(values[:, j], q)
                if not hi > lo:  # a constant or single-sample column
                    lo, hi = lo - 0.5, lo + 0.5
                bins = np.linspace(lo, hi, 30)
                ax.hist(obs[:, j], bins=bins, color="0.75", density=True)
                ax.hist(values[idx, j], bins=bins, histtype="step", color="C0", density=True)
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(labels[j], fontsize=8)
            axes[r, 0].set_ylabel(
                f"{name}\n({split})", rotation=0, ha="right", va="center", fontsize=7
            )
        fig.suptitle(f"{what} per context (grey: {ref[0]})")
    # keep the title close to the grid whatever the number of rows
    h = fig.get_figheight()
    fig.subplots_adjust(top=1 - 0.55 / h)
    fig._suptitle.set_y(1 - 0.12 / h)
    try:
        return _atomic_savefig(fig, Path(path))
    finally:
        plt.close(fig)


__all__ = ["SPLITS", "samples_grid"]
