"""The run report: ``report.md`` and ``figures/*.png`` from an :class:`Evaluation`.

:func:`write_report` takes the evaluation's result object (metrics, alignments, tensors, trained
models, identifiability report) and draws nothing it has to measure again.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np

from conceptid.simulations.benchmark import Dataset

from .config import REPORTED, RunConfig
from .evaluation import NO_GROUND_TRUTH, Evaluation, describe_floors
from .modelcheck import applies_to
from .plots import concept_scatter, r2_matrix, samples_figure, training_curves
from .rundir import write_text

__all__ = ["FIGURE_CAPTIONS", "primary_method", "write_report"]

#: the report's figures (``figures/NAME.png``) and their captions, in the report's order
FIGURE_CAPTIONS = {
    "samples_per_context": "samples per context, data vs generated",
    "compositions": "held-out compositions, true vs generated",
    "concept_scatter": "true vs learned concept",
    "r2_matrix": "R^2 of each learned dimension against each concept",
    "training_curves": "training curves",
}


def primary_method(names) -> str:
    """The method the figures show: the context module as exact prior, else the VAE variant,
    else the first."""
    names = list(names)
    for name in ("context-flow", "context-module"):
        if name in names:
            return name
    return names[0]


def _fmt(v, spec=".3f") -> str:
    missing = v is None or (isinstance(v, float) and not math.isfinite(v))
    return "n/a" if missing else format(v, spec)


#: test rows of the training contexts below which the report says R^2 and MCC are rough
FEW_ROWS = 200


def _schedule_notes(evaluation: Evaluation) -> list[str]:
    """A line for each two-step fit (:class:`~conceptid.models.mle.LatentFlowMLE`): how many of
    the epochs that ran trained the autoencoder, the prior's likelihood and the joint
    fine-tune (the stages its training history recorded; nothing for a model saved before
    they were), and, where none trained the likelihood, that its prior was not fitted."""
    from conceptid.models.mle import LatentFlowMLE

    parts = []
    for t in evaluation.trained.values():
        stages = (t.history or {}).get("stage")
        if not isinstance(t.model, LatentFlowMLE) or not stages:
            continue
        counts = [stages.count(k) for k in (0, 1, 2)]
        text = (f"{t.label}: of the {len(stages)} epochs that ran (a budget of "
                f"{t.settings.get('epochs')}), {counts[0]} trained the autoencoder, {counts[1]} "
                f"the prior's likelihood")  # fmt: skip
        if counts[2]:
            text += f", {counts[2]} the joint fine-tune"
        if counts[1] + counts[2] == 0:
            text += " (its prior was not fitted by likelihood: give more epochs)"
        parts.append(text)
    return ["", "Two-step fits: " + "; ".join(parts) + "."] if parts else []


def _title(ds: Dataset, cfg: RunConfig) -> str:
    if cfg.spec is not None:
        return f"{cfg.spec.preset or 'model'} benchmark"
    if ds.has_ground_truth:
        return f"{ds.name} dataset"
    return f"imported data `{ds.name}` (no ground truth)"


def write_report(*, ds: Dataset, evaluation: Evaluation, timings: dict,
                 config: RunConfig) -> Path:  # fmt: skip
    """Figures and ``report.md`` in ``config.out`` (atomic writes), from what ``evaluation``
    measured (its alignments included: nothing is measured twice).

    Parameters
    ----------
    ds : Dataset
        The evaluated dataset.
    evaluation : Evaluation
        From :func:`conceptid.evaluation.evaluate`. Its ``check`` is the identifiability report,
        None for a dataset without ground truth (imported), whose report then says why the check
        and the recovery metrics and figures are absent.
    timings : dict
        Wall times of the stages (``data``, ``check``, ``evaluate``; a stage that did not run
        is absent or None, and the report leaves it out) and of each method's training
        (``train``).
    config : RunConfig
        The run's configuration (title, figure seed, samples per SWD, the command).

    Returns
    -------
    Path
        ``config.out / "report.md"``.

    Raises
    ------
    conceptid.errors.PlotError
        A figure cannot be drawn.
    """
    cfg, out = config, Path(config.out)
    metrics, report = evaluation.metrics, evaluation.check
    figs = out / "figures"
    primary = primary_method(evaluation.trained)
    model = evaluation.trained[primary].model
    _, (_, _, te, held) = evaluation.splits
    samples_figure(figs / "samples_per_context.png", ds, model, te, held, ds.training_contexts,
                   f"{primary}: data vs generated, training contexts", cfg.seed)  # fmt: skip
    if ds.held_out_contexts:
        samples_figure(figs / "compositions.png", ds, model, te, held, ds.held_out_contexts,
                       f"{primary}: held-out compositions, true vs generated",
                       cfg.seed)  # fmt: skip
    truth = ds.has_ground_truth
    if truth:
        names = ds.concept_names
        concept_scatter(figs / "concept_scatter.png", names, evaluation.alignments[primary],
                        te.concepts.numpy(),
                        f"{primary}: true vs learned concept (best affine map)")  # fmt: skip
        r2_matrix(figs / "r2_matrix.png", names, metrics["methods"][primary]["r2_matrix"],
                  f"{primary}: R^2 of each learned dimension")  # fmt: skip
    training_curves(figs / "training_curves.png", evaluation.histories)

    L = [f"# conceptid report: {_title(ds, cfg)}", ""]
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
        epochs = metrics["epochs"]
        trained_as = (f"seed {metrics['seed']}, {epochs} epoch{'s' if epochs != 1 else ''}, batch "
                      f"{metrics['batch_size']}, lr {metrics['lr']}, {metrics['restarts']} "
                      f"restart(s) per method, on {metrics['device']}")  # fmt: skip
    else:
        trained_as = "training settings per method in the table below"
    swd_text = (f"SWD: sliced Wasserstein-2 (POT, 200 projections, fixed seed) between "
                f"{evaluation.n_generate} generated and the test samples, averaged over "
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
    built = [f"{evaluation.trained[name].label}: "
             + ", ".join(f"{k}={json.dumps(v)}" for k, v in m["training"]["options"].items())
             for name, m in metrics["methods"].items() if m["training"].get("options")]  # fmt: skip
    if built:  # the construction options given to a method (`--method-arg`), stored with it
        rest = (
            " (the other methods with their defaults)"
            if len(built) < len(metrics["methods"])
            else ""
        )
        L += ["", f"Built with options{rest}: {'; '.join(built)}."]
    if trained_as.startswith("training settings per method"):
        L += ["", "| method | " + " | ".join(REPORTED) + " |", "| --- " * (len(REPORTED) + 1) + "|"]
        for name, m in metrics["methods"].items():
            L.append(f"| {evaluation.trained[name].label} | "
                     + " | ".join(str(m["training"].get(k)) for k in REPORTED) + " |")  # fmt: skip
    recovery = ["R^2 per concept", "mean R^2", "MCC"] if truth else []
    columns = ["method", *recovery, "concept SWD", "composition SWD", "bits/dim", "active dims",
               "train time [s]"]  # fmt: skip
    L += ["", "| " + " | ".join(columns) + " |", "| --- " * len(columns) + "|"]
    for name, m in metrics["methods"].items():
        cells = [evaluation.trained[name].label]
        if truth:
            cells += [" ".join(f"{v:.2f}" for v in m["r2"]), _fmt(m["mean_r2"]), _fmt(m["mcc"])]
        cells += [_fmt(m["concept_swd"], ".4f"), _fmt(m["composition_swd"], ".4f"),
                  f"{_fmt(m['bits_per_dim'])} ({m['bits_kind']})",
                  f"{m['active_dims']}/{m['latent_dims']}",
                  f"{timings['train'].get(name, 0.0):.1f}"]  # fmt: skip
        L.append("| " + " | ".join(cells) + " |")
    floors = metrics.get("floors")
    if floors is not None:
        L += [
            "",
            f"Reference SWDs on the same test rows (`conceptid.floors`, one draw each, so "
            f"noisy too): a fresh sample of each context's true law (same-law: about what a "
            f"perfect generator scores at this size), of the observational law "
            f"(observational: a generator that ignores the labels and reproduces that law), "
            f"and, for compositions, of a linear Gaussian SEM fitted to the true concepts "
            f"(oracle SEM: exact recovery, the law estimated): {describe_floors(floors)}.",
        ]
    test = ds.context[ds.mask("test")]
    smallest = int(np.unique(test, return_counts=True)[1].min()) if len(test) else 0
    if smallest < 500:  # with or without ground truth: every SWD is measured on these rows
        L += ["", f"The test split holds {smallest} rows in its smallest context: below 500, "
              "the SWDs and their ratios carry a large sampling error."]  # fmt: skip
    if truth:
        rows = int((ds.mask("test") & np.isin(ds.context, ds.training_contexts)).sum())
        if rows < FEW_ROWS:
            L += ["", f"R^2 and MCC are measured on the {rows} test rows of the training "
                  f"contexts: below {FEW_ROWS}, an affine map fitted on so few rows carries a "
                  "large sampling error."]  # fmt: skip
    L += _schedule_notes(evaluation)
    checked = {name: m["noise_check"] for name, m in metrics["methods"].items()
               if any((m.get("noise_check") or {}).values())}  # fmt: skip
    unchecked = [
        evaluation.trained[name].label
        for name, m in metrics["methods"].items()
        if name not in checked and applies_to(evaluation.trained[name].model)
    ]
    if unchecked:
        L += [
            "",
            f"Noise check of {', '.join(unchecked)}: not run, no context could be tested "
            "(Bartlett's test needs at least two noise coordinates and more test rows than "
            "coordinates, and skips a context whose noise is not finite or is collapsed).",
        ]
    if checked:
        parts = []
        for name, nc in checked.items():
            got = [f"{where} p = {nc[part]['bonferroni_p']:.2g} (statistic per degree of "
                   f"freedom {nc[part]['statistic_per_dof']:.2f})" for part, where in
                   (("training", "training contexts"), ("held_out", "held-out compositions"))
                   if nc.get(part)]  # fmt: skip
            if not nc.get("training"):  # found by review: left out without a word
                got.insert(0, "training contexts not tested (too few test rows for the "
                              "noise coordinates, or a collapsed noise)")  # fmt: skip
            parts.append(f"{evaluation.trained[name].label}: {', '.join(got)}")
        L += ["", "Noise check (needs no ground truth; `conceptid.modelcheck`): a model with a "
              "per-context prior says that, in every context, the exogenous noise of its "
              "learned concepts and nuisance coordinates is independent. Bartlett's test of "
              "that independence (correlations only) on the test rows, the smallest p-value "
              "over contexts times their number (Bonferroni), and the statistics summed over "
              "their degrees of freedom (about 1 when the noise is independent): "
              + "; ".join(parts) + ". A small p-value says the model is wrong in some "
              "context (entangled concepts or a wrong law); a large one certifies nothing. "
              "Models that ignore the labels are not checked, nor is the iVAE-style VAE "
              "(a prior per training context, none per target set, and no exogenous noise), "
              "nor the context-module VAE, whose context-free encoder cannot give independent "
              "noise in every context."]  # fmt: skip
    ms = metrics["methods"]
    for name, peer, peer_label in [
        ("context-flow", "pooled", "the pooled VAE's"),
        ("context-flow", "context-flow-ablation", "its labels-ignored ablation's"),
        ("context-module", "pooled", "the pooled VAE's"),
    ]:
        if name in ms and peer in ms:
            a, b = ms[name]["composition_swd"], ms[peer]["composition_swd"]
            if a is not None and b:
                label = evaluation.trained[name].label
                L += ["", f"Composition SWD of the {label}: {a / b:.2f}x {peer_label}"
                      f"{_paper_figure(metrics['spec'], peer)}."]  # fmt: skip
    L += ["", "## Figures", ""]
    for name, cap in FIGURE_CAPTIONS.items():
        if (figs / f"{name}.png").exists():
            L.append(f"![{cap}](figures/{name}.png)")
    L += ["", "## Reproduce", "", "```", cfg.command, "```", ""]
    ran = [(label, timings.get(key)) for key, label in
           (("data", "data"), ("check", "check"), ("evaluate", "evaluation"))]  # fmt: skip
    L += ["- stage times: " + ", ".join(f"{label} {t:.1f} s" for label, t in ran
                                        if t is not None), ""]  # fmt: skip
    v = metrics["versions"]
    L += [f"- versions: conceptid {v['conceptid']}, torch {v['torch']}, numpy {v['numpy']}, "
          f"Python {v['python']} on {platform.platform()}", ""]  # fmt: skip
    if metrics["spec"] is not None:
        L += ["Spec:", "", "```json", json.dumps(metrics["spec"], indent=1), "```", ""]
    else:
        L += [f"Dataset: `{ds.name}`, content hash `{ds.content_hash}`, "
              f"source `{json.dumps(ds.source, sort_keys=True)}`.", ""]  # fmt: skip
    return write_text(out / "report.md", "\n".join(L))


def _paper_figure(spec: dict | None, peer: str) -> str:
    """The paper's own figure for a composition ratio against the pooled VAE, where the data
    are the quad scene it reports on (its dependent and independent tables); else nothing: the
    paper's numbers say nothing about other data."""
    if peer != "pooled" or not spec or spec.get("preset") != "quad":
        return ""
    args = spec.get("preset_args") or {}
    if args.get("identifiable") or args.get("mixing", "image") != "image":
        return ""
    if args.get("dependent", True) is False:
        return " (the paper reports about 0.33x the pooled VAE on its independent quad data)"
    return " (the paper reports about 0.6x the pooled VAE on its dependent quad data)"
