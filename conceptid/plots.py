"""Every figure the package draws (matplotlib, Agg backend, atomic PNG writes).

:func:`samples_grid` (``conceptid inspect``), :func:`image_grid` (``conceptid generate --out
x.png``), and the report's figures: :func:`samples_figure`, :func:`concept_scatter`,
:func:`r2_matrix` and :func:`training_curves`. Each writes one PNG with :func:`save_figure` and
returns its path. Whatever matplotlib refuses (a ``ValueError``: an image too large to draw,
values it cannot place) becomes a :class:`~conceptid.errors.PlotError` naming the figure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from conceptid.simulations.atomic import atomic_path
from conceptid.simulations.benchmark import Dataset
from conceptid.simulations.errors import ConceptIDError, UsageError
from conceptid.simulations.validation import torch_seed

from .errors import PlotError

__all__ = [
    "DPI",
    "concept_scatter",
    "image_grid",
    "pyplot",
    "r2_matrix",
    "samples_figure",
    "samples_grid",
    "save_figure",
    "training_curves",
]

#: resolution of every PNG
DPI = 110


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def _drawing(path: str | os.PathLike) -> Iterator[None]:
    """Turn matplotlib's refusals (``ValueError``) while drawing ``path`` into PlotError, closing
    the figures opened meanwhile."""
    plt = pyplot()
    before = set(plt.get_fignums())
    try:
        yield
    except ValueError as err:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        if isinstance(err, ConceptIDError):  # the package's own refusal, already explained
            raise
        raise PlotError(f"cannot draw {path}: {err}") from None


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to the PNG ``path`` atomically (whole or not at all) and close it.

    Raises
    ------
    PlotError
        matplotlib cannot render it (e.g. an image too large to draw); nothing is written.
    """
    try:
        with _drawing(path), atomic_path(Path(path), ".png") as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return Path(path)


def samples_grid(
    ds: Dataset, path: str | os.PathLike, *, per_context: int = 8, seed: int = 0
) -> Path:
    """A PNG of samples per context: images in a grid (rows = contexts), or, for vector data,
    histograms of every concept per context against the observational context (for data
    without ground-truth concepts, of the observations' first principal components).

    Raises
    ------
    UsageError
        The dataset has no samples.
    PlotError
        matplotlib cannot draw it.
    """
    plt = pyplot()
    rng = np.random.default_rng(seed)
    names = ds.context_names
    held = set(ds.held_out_contexts)
    rows = []
    for k, name in enumerate(names):
        split = "test" if k in held else "train"
        idx = np.flatnonzero(ds.mask(split, k))
        if not idx.size:  # e.g. a dataset generated with n_train = 0: take any split
            split, idx = "any split", np.flatnonzero(ds.mask(None, k))
        if idx.size:
            rows.append((name, split, idx))
    if not rows:
        raise UsageError("the dataset has no samples to plot")
    with _drawing(path):
        if ds.is_image:
            ncol = per_context
            fig, axes = plt.subplots(  # squeeze=False: (rows, ncol) even for one column
                len(rows), ncol, figsize=(1.1 * ncol + 1.5, 1.1 * len(rows)), squeeze=False
            )  # fmt: skip
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
            title = fig.suptitle("samples per context")
        else:
            if ds.has_ground_truth:
                values = np.asarray(ds.concepts)
                labels = [
                    name if k == 1 else f"{name}[{i}]"
                    for name, k in zip(ds.concept_names, ds.block_sizes)
                    for i in range(k)
                ]
                what = "concept marginals"
            else:  # no concepts to show: the directions along which the observations vary most
                x = np.asarray(ds.x, dtype=np.float64)
                x = x - x.mean(0)
                # the directions from at most 5000 rows: an SVD of every row would cost more
                # than the figure is worth on a large dataset
                basis = x[rng.permutation(len(x))[:5000]]
                pcs = np.linalg.svd(basis, full_matrices=False)[2][: min(4, x.shape[1])]
                values = x @ pcs.T
                labels = [f"PC{j + 1} of x" for j in range(len(pcs))]
                what = "principal components of the observations"
            K = values.shape[1]
            fig, axes = plt.subplots(  # squeeze=False: (rows, K) even for one column or row
                len(rows), K, figsize=(1.6 * K + 1.5, 1.0 * len(rows)), sharex="col",
                squeeze=False,
            )  # fmt: skip
            plain = [names[k] for k in ds.observational_contexts]
            ref = next((row for row in rows if row[0] in plain), rows[0])
            obs = values[ref[2]]
            for r, (name, split, idx) in enumerate(rows):
                for j in range(K):
                    ax = axes[r, j]
                    # trim outliers only when there are enough samples for percentiles to mean
                    # much
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
            title = fig.suptitle(f"{what} per context (grey: {ref[0]})")
        # keep the title close to the grid whatever the number of rows
        h = fig.get_figheight()
        fig.subplots_adjust(top=1 - 0.55 / h)
        title.set_y(1 - 0.12 / h)
    return save_figure(fig, path)


def image_grid(images: np.ndarray, path: str | os.PathLike, *, columns: int = 8) -> Path:
    """A PNG of uint8 images ``(n, H, W, 3)``, ``columns`` to a row.

    Raises
    ------
    UsageError
        ``images`` are not images (vectors belong in a ``.npy`` file).
    PlotError
        matplotlib cannot draw it.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise UsageError("a PNG needs image samples; write vector samples to a .npy file")
    plt = pyplot()
    n = len(images)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    with _drawing(path):
        fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, img in zip(axes.flat, images):
            ax.imshow(img)
    return save_figure(fig, path)


def _context_rows(ds: Dataset, split_data, held_data, ids, per: int, seed: int):
    """For each context id: up to ``per`` data rows (normalised space) and its target mask."""
    masks = ds.target_mask()
    held = set(ds.held_out_contexts)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ids:
        src = held_data if k in held else split_data
        idx = np.flatnonzero((src.context == k).numpy())
        pick = rng.choice(idx, size=min(per, idx.size), replace=False) if idx.size else idx
        rows.append((ds.context_names[k], src.x[pick].numpy(), masks[k]))
    return rows


def samples_figure(path: str | os.PathLike, ds: Dataset, model, test, held, ids, title: str,
                   seed: int) -> Path:  # fmt: skip
    """Data vs generated samples per context (context indices ``ids``; data rows from the
    tensors ``test``, or ``held`` for a held-out context): images side by side, vectors as
    scatter plots of the first two principal components (data grey, generated coloured)."""
    import torch

    plt = pyplot()
    images = ds.is_image
    per = 6 if images else 300
    rows = _context_rows(ds, test, held, ids, per, seed)
    g = torch.Generator().manual_seed(torch_seed(seed))
    gens = []
    with torch.no_grad():
        for _, data, mask in rows:
            t = torch.from_numpy(np.repeat(mask[None], max(len(data), 1), 0))
            gens.append(model.generate(t, generator=g).numpy())
    with _drawing(path):
        if images:
            size = (0.9 * 2 * per + 1.5, 0.95 * len(rows))
            fig, axes = plt.subplots(len(rows), 2 * per, figsize=size)
            axes = np.atleast_2d(axes)
            for r, ((name, data, _), gen) in enumerate(zip(rows, gens)):
                for c in range(2 * per):
                    ax = axes[r, c]
                    ax.set_xticks([])
                    ax.set_yticks([])
                    src, i = (data, c) if c < per else (gen, c - per)
                    if i < len(src):
                        ax.imshow(np.clip(src[i].transpose(1, 2, 0), 0, 1))
                axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
            axes[0, 0].set_title("data", fontsize=8, loc="left")
            axes[0, per].set_title("generated", fontsize=8, loc="left")
        else:
            ref = np.concatenate([d for _, d, _ in rows])
            mu = ref.mean(0)
            V = np.linalg.svd(ref - mu, full_matrices=False)[2][:2].T
            # one observed dimension (or one row): a strip along the first component
            V = np.pad(V, ((0, 0), (0, 2 - V.shape[1])))
            ncol = min(4, len(rows))
            nrow = int(np.ceil(len(rows) / ncol))
            fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.4 * nrow), squeeze=False)
            for ax in axes.flat[len(rows) :]:
                ax.axis("off")
            for ax, (name, data, _), gen in zip(axes.flat, rows, gens):
                ax.scatter(*((data - mu) @ V).T, s=3, color="0.6", label="data")
                ax.scatter(*((gen - mu) @ V).T, s=3, color="C0", alpha=0.6, label="generated")
                ax.set_title(name, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            axes.flat[0].legend(fontsize=7, markerscale=3)
        fig.tight_layout()
        fig.suptitle(title, y=1.01)
    return save_figure(fig, path)


def concept_scatter(path: str | os.PathLike, names, res, true: np.ndarray, title: str) -> Path:
    """True concept against its affine prediction from the learned block (the class's map);
    ``res`` the alignment (:func:`conceptid.identifiability.align`) of ``true``."""
    plt = pyplot()
    K = true.shape[1]
    pred = true - res.residuals
    ncol = min(4, K)
    nrow = int(np.ceil(K / ncol)) if ncol else 0
    with _drawing(path):
        fig, axes = plt.subplots(nrow, ncol, figsize=(2.4 * ncol, 2.3 * nrow), squeeze=False)
        for ax in axes.flat[K:]:
            ax.axis("off")
        labels = names if len(names) == K else [f"c{j}" for j in range(K)]
        for j, ax in enumerate(axes.flat[:K]):
            ax.scatter(true[:, j], pred[:, j], s=2, alpha=0.5)
            lo, hi = np.percentile(true[:, j], [0.5, 99.5])
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
            ax.set_title(f"{labels[j]}", fontsize=8)
            ax.set_xlabel("true", fontsize=7)
            ax.set_ylabel("learned (aligned)", fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
    return save_figure(fig, path)


def r2_matrix(path: str | os.PathLike, names, matrix, title: str) -> Path:
    """The R^2 of each learned dimension (rows) against each true concept (columns)."""
    plt = pyplot()
    M = np.asarray(matrix)
    with _drawing(path):
        fig, ax = plt.subplots(figsize=(0.55 * M.shape[1] + 2, 0.4 * M.shape[0] + 1.5))
        im = ax.imshow(M, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(M):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="w" if v < 0.6 else "k")  # fmt: skip
        ax.set_xticks(range(M.shape[1]), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(M.shape[0]), [f"z{i}" for i in range(M.shape[0])], fontsize=7)
        ax.set_xlabel("true concept")
        ax.set_ylabel("learned dimension")
        fig.colorbar(im, ax=ax, label="R^2")
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _final_objective(history: dict) -> list[float]:
    """The training losses of the epochs that trained the objective the validation curve
    measures, NaN elsewhere: a warm-up epoch (a two-step fit's autoencoder, whose
    reconstruction loss is on another scale), the epoch that ends a warm-up included (it
    trained the warm-up's objective and was validated after the switch). From the history's
    ``warm_up`` record; a history written before it was kept is read from the gaps in its
    validation curve (an epoch not validated, or the first validated after one)."""
    train, val = history["train_loss"], history["val_loss"]
    warm = history.get("warm_up")
    if warm is None or len(warm) != len(train):
        warm = [v is None or (i > 0 and val[i - 1] is None) for i, v in enumerate(val)]
    return [np.nan if w else t for t, w in zip(train, warm)]


def training_curves(path: str | os.PathLike, histories: dict) -> Path:
    """Training and validation loss per epoch of each method (``histories``: method ->
    trainer history), the best epoch dotted; the training loss only of the epochs that trained
    the objective the validation measures (:func:`_final_objective`)."""
    plt = pyplot()
    n = len(histories)
    with _drawing(path):
        fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 2.4), squeeze=False)
        for ax, (name, h) in zip(axes.flat, histories.items()):
            val = [np.nan if v is None else v for v in h["val_loss"]]
            ax.plot(_final_objective(h), label="train", marker=".", markersize=3)
            # a warm-up epoch is not validated (None): a gap in the curve
            ax.plot(val, label="validation")
            if h.get("best_epoch", -1) >= 0:
                ax.axvline(h["best_epoch"], color="k", lw=0.6, ls=":")
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("epoch", fontsize=7)
        axes.flat[0].set_ylabel("loss")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
    return save_figure(fig, path)
