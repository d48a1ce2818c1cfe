"""The run report: ``report.md`` and ``figures/*.png`` from a finished (or resumed) run."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch

from conceptid.simulations.benchmark import Dataset

from .plots import _atomic_savefig

__all__ = ["write_report"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _primary(trained: dict) -> str:
    """The method the figures show: the context module as exact prior, else the VAE variant."""
    for name in ("context-flow", "context-module"):
        if name in trained:
            return name
    return next(iter(trained))


def _context_rows(ds: Dataset, split_data, held_data, ids, per: int, seed: int):
    """For each context id: up to ``per`` data rows (normalised space) and its target mask."""
    from conceptid.models.data import targets_mask

    masks = targets_mask(ds)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ids:
        src = held_data if ds.card["contexts"][k]["held_out"] else split_data
        idx = np.flatnonzero((src.context == k).numpy())
        pick = rng.choice(idx, size=min(per, idx.size), replace=False) if idx.size else idx
        rows.append((ds.context_names[k], src.x[pick].numpy(), masks[k]))
    return rows


def fig_samples(path: Path, ds: Dataset, model, te, held, ids, title: str, seed: int) -> Path:
    """Data vs generated samples per context: images side by side, vectors as scatter plots of
    the first two principal components (data grey, generated coloured)."""
    plt = _plt()
    images = ds.x.dtype == np.uint8
    per = 6 if images else 300
    rows = _context_rows(ds, te, held, ids, per, seed)
    g = torch.Generator().manual_seed(seed)
    gens = []
    with torch.no_grad():
        for _, data, mask in rows:
            t = torch.from_numpy(np.repeat(mask[None], max(len(data), 1), 0))
            gens.append(model.generate(t, generator=g).numpy())
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
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def fig_concept_scatter(path: Path, names, res, true: np.ndarray, title: str) -> Path:
    """True concept against its affine prediction from the learned block (the class's map)."""
    plt = _plt()
    K = true.shape[1]
    pred = true - res.residuals
    ncol = min(4, K)
    nrow = int(np.ceil(K / ncol))
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
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def fig_r2_matrix(path: Path, names, matrix: np.ndarray, title: str) -> Path:
    plt = _plt()
    M = np.asarray(matrix)
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
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def fig_training(path: Path, histories: dict) -> Path:
    plt = _plt()
    n = len(histories)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 2.4), squeeze=False)
    for ax, (name, h) in zip(axes.flat, histories.items()):
        ax.plot(h["train_loss"], label="train")
        ax.plot(h["val_loss"], label="validation")
        if h.get("best_epoch", -1) >= 0:
            ax.axvline(h["best_epoch"], color="k", lw=0.6, ls=":")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
    axes.flat[0].set_ylabel("loss")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    try:
        return _atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def _fmt(v, spec=".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def _title(ds, cfg) -> str:
    if cfg.spec is not None:
        return f"{cfg.spec.preset or 'model'} benchmark"
    if ds.has_ground_truth:
        return f"{ds.card['name']} dataset"
    return f"imported data `{ds.card['name']}` (no ground truth)"


def write_report(
    out: Path, ds, trained, histories, metrics, timings, report, cfg, data_splits=None
) -> Path:
    """Figures and ``report.md`` (atomic writes); ``data_splits`` as from
    :func:`conceptid.pipeline.splits`, computed when not given. ``report`` is the
    identifiability report, None for a dataset without ground truth (imported), whose report
    then says why the check and the recovery metrics and figures are absent."""
    from conceptid.identifiability import align

    from .pipeline import METHODS, NO_GROUND_TRUTH, REPORTED, _normaliser_of, _write_text, splits

    figs = out / "figures"
    primary = _primary(trained)
    model = trained[primary]
    _, (_, _, te, held) = data_splits or splits(ds, _normaliser_of(model))
    train_ids = [c["index"] for c in ds.card["contexts"] if not c["held_out"]]
    held_ids = [c["index"] for c in ds.card["contexts"] if c["held_out"]]
    fig_samples(figs / "samples_per_context.png", ds, model, te, held, train_ids,
                f"{primary}: data vs generated, training contexts", cfg.seed)  # fmt: skip
    if held_ids:
        fig_samples(figs / "compositions.png", ds, model, te, held, held_ids,
                    f"{primary}: held-out compositions, true vs generated", cfg.seed)  # fmt: skip
    truth = ds.has_ground_truth
    if truth:
        blocks = tuple(ds.card["block_sizes"])
        learned = model.concepts(te.x, te.targets).numpy()
        res = align(learned, te.concepts.numpy(), blocks,
                    assignment="hungarian" if METHODS[primary].hungarian else "given")  # fmt: skip
        names = list(ds.card["concept_names"])
        fig_concept_scatter(figs / "concept_scatter.png", names, res, te.concepts.numpy(),
                            f"{primary}: true vs learned concept (best affine map)")  # fmt: skip
        fig_r2_matrix(figs / "r2_matrix.png", names, metrics["methods"][primary]["r2_matrix"],
                      f"{primary}: R^2 of each learned dimension")  # fmt: skip
    fig_training(figs / "training_curves.png", histories)

    L = [f"# conceptid run: {_title(ds, cfg)}", ""]
    L += ["## Identifiability verdict", ""]
    if report is None:
        L += ["Not checked: the check decides identifiability from the true model (its graph, "
              "mechanisms, mixing and contexts), and this dataset was imported without one.",
              ""]  # fmt: skip
    else:
        L += ["```", str(report), "```", ""]
        L += ["| assumption | holds | reason |", "| --- | --- | --- |"]
        mark = {True: "yes", False: "**no**", None: "unverified"}
        for name, v in report.assumptions.items():
            L.append(f"| {name} | {mark[v.holds]} | {v.reason} |")
    L += ["", "## Results", ""]
    # the settings stored with the models (metrics.json), not the command's: a reused or
    # separately trained model is described as it was trained
    if all(metrics[k] is not None for k in REPORTED):
        trained_as = (f"seed {metrics['seed']}, {metrics['epochs']} epochs, batch "
                      f"{metrics['batch_size']}, lr {metrics['lr']}, {metrics['restarts']} "
                      f"restart(s) per method, on {metrics['device']}")  # fmt: skip
    else:
        trained_as = "training settings per method in the table below"
    swd_text = (f"SWD: sliced Wasserstein-2 (POT, 200 projections, fixed seed) between "
                f"{cfg.n_generate} generated and the test samples, averaged over "
                f"contexts.")  # fmt: skip
    if truth:
        L.append(
            f"Test split of the training contexts (R^2, MCC, concept SWD) and of the held-out "
            f"compositions (composition SWD); {trained_as}. R^2 is per "
            f"concept, up to the proven class (best affine map, `conceptid.identifiability.align`; "
            f"Hungarian assignment for models without concept labels). {swd_text}"
        )
    else:
        L.append(
            f"Test split of the training contexts (concept SWD) and of the held-out "
            f"compositions (composition SWD, when the dataset holds any); {trained_as}. "
            f"{swd_text} {NO_GROUND_TRUTH[0].upper()}{NO_GROUND_TRUTH[1:]}."
        )
    if trained_as.startswith("training settings per method"):
        L += ["", "| method | " + " | ".join(REPORTED) + " |", "| --- " * (len(REPORTED) + 1) + "|"]
        for name, m in metrics["methods"].items():
            L.append(f"| {METHODS[name].label} | "
                     + " | ".join(str(m["training"].get(k)) for k in REPORTED) + " |")  # fmt: skip
    recovery = ["R^2 per concept", "mean R^2", "MCC"] if truth else []
    columns = ["method", *recovery, "concept SWD", "composition SWD", "bits/dim", "active dims",
               "train time [s]"]  # fmt: skip
    L += ["", "| " + " | ".join(columns) + " |", "| --- " * len(columns) + "|"]
    for name, m in metrics["methods"].items():
        cells = [METHODS[name].label]
        if truth:
            cells += [" ".join(f"{v:.2f}" for v in m["r2"]), _fmt(m["mean_r2"]), _fmt(m["mcc"])]
        cells += [_fmt(m["concept_swd"], ".4f"), _fmt(m["composition_swd"], ".4f"),
                  f"{_fmt(m['bits_per_dim'])} ({m['bits_kind']})",
                  f"{m['active_dims']}/{m['latent_dims']}",
                  f"{timings['train'].get(name, 0.0):.1f}"]  # fmt: skip
        L.append("| " + " | ".join(cells) + " |")
    ms = metrics["methods"]
    for name, peer, peer_label in [
        ("context-flow", "pooled", "the pooled VAE's"),
        ("context-flow", "context-flow-ablation", "its labels-ignored ablation's"),
        ("context-module", "pooled", "the pooled VAE's"),
    ]:
        if name in ms and peer in ms:
            a, b = ms[name]["composition_swd"], ms[peer]["composition_swd"]
            if a is not None and b:
                L += ["", f"Composition SWD of the {METHODS[name].label}: {a / b:.2f}x "
                      f"{peer_label} (the paper reports about 0.6x the pooled VAE on its "
                      "dependent quad data)."]  # fmt: skip
    L += ["", "## Figures", ""]
    for f, cap in [
        ("samples_per_context.png", "samples per context, data vs generated"),
        ("compositions.png", "held-out compositions, true vs generated"),
        ("concept_scatter.png", "true vs learned concept"),
        ("r2_matrix.png", "R^2 of each learned dimension against each concept"),
        ("training_curves.png", "training curves"),
    ]:
        if (figs / f).exists():
            L.append(f"![{cap}](figures/{f})")
    L += ["", "## Reproduce", "", "```", cfg.command, "```", ""]
    L += [f"- stage times: data {timings['data']:.1f} s, check {timings['check']:.1f} s, "
          f"evaluation {timings['evaluate']:.1f} s", ""]  # fmt: skip
    v = metrics["versions"]
    L += [f"- versions: conceptid {v['conceptid']}, torch {v['torch']}, numpy {v['numpy']}, "
          f"Python {v['python']} on {platform.platform()}", ""]  # fmt: skip
    if metrics["spec"] is not None:
        L += ["Spec:", "", "```json", json.dumps(metrics["spec"], indent=1), "```", ""]
    else:
        L += [f"Dataset: `{ds.card['name']}`, content hash `{ds.card['content_hash']}`, "
              f"source `{json.dumps(ds.card.get('source'), sort_keys=True)}`.", ""]  # fmt: skip
    _write_text(out / "report.md", "\n".join(L))
    return out / "report.md"
