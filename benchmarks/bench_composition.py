"""Composition: the context module as exact prior against the pooled VAE and its own ablation.

For each seed: a benchmark with held-out composed contexts (quad dependent or independent at
32x32, or any preset), every method trained by the same trainer on the same data and budget,
then the SWD between generated and test samples, for the training contexts (concept SWD) and for
the held-out compositions (composition SWD, never seen in training), with at least 500 test
samples per context. Printed beside the floors measured in the same run (``conceptid.floors``):
the sampling floor (a fresh draw of the same context), the labels-ignored floor (a fresh draw of
the observational context) and, where the data allow it (a linear Gaussian SEM with hard
interventions), the oracle SEM floor (a linear Gaussian SEM fitted to the true concepts of the
training rows, through the true mixing: what composing costs when recovery is exact). Ratios
are against the pooled VAE and against the labels-ignored ablation of the same model, both
trained in the same run, and against the sampling floor, seed by seed. Each two-step fit's line
also gives its noise check (``conceptid.modelcheck``, no ground truth needed): Bartlett's
statistics of its exogenous noise on the training contexts' test rows, summed, per degree of
freedom.

``--diagnose`` (two-step models) adds, per seed, where a composition's error lives: on vector
data with ground truth, probes of how much of each true concept the data ``x``, the frozen
latent ``z`` of step 1 and the learned concepts ``u`` carry (R^2 of an MLP fitted on the
training rows), beside each learned concept's own R^2 up to the class; then, context by
context, the generated samples and the decoder against their floors and the prior in the space
of the learned concepts.

With ``--restarts R`` (R > 1) it prints each fit's selection score (the validation NLL of the
two-step fits, lower kept) before the seed's metrics: how clear the choice between them was.

Goals (composition issue): quad dependent composition SWD <= 0.5x the pooled VAE's and concept
SWD <= 0.6x; quad independent composition <= 0.3x; the module beats its ablation on composition by
at least 40% on both; on the identifiable variant (``--preset-arg identifiable=true``, where
``check`` answers identifiable* for every concept) per-concept R^2 up to the class >= 0.9 for every
concept. The printout has a per-concept R^2 table for that.

Run: ``.venv/bin/python benchmarks/bench_composition.py [--preset quad] [--independent]
[--seeds 0,1,2] [--epochs 30] [--n 500] [--n-test 500]
[--methods context-flow,context-flow-ablation,pooled] [--threads 2] [--restarts 1]
[--preset-arg KEY=JSON] [--flow-arg KEY=JSON] [--diagnose]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _args import (  # beside this file
    at_least,
    int_list,
    key_json,
    name_list,
    parser,
    vector_methods_on_images,
)

from conceptid.evaluation import floor_summary
from conceptid.methods import check_options, flow_schedule
from conceptid.models.metrics import sliced_wasserstein
from conceptid.models.mle import LatentFlowMLE, ManifoldMLE
from conceptid.pipeline import METHODS, ensure_data, evaluate_method, splits, train_method
from conceptid.simulations import BenchmarkSpec
from conceptid.simulations.errors import ConceptIDError


@torch.no_grad()
def reconstruction_swd(model, data, n: int, seed: int) -> float | None:
    """SWD between test data and its reconstruction through the model's autoencoder (mean over
    the training contexts): the floor its generated samples cannot beat. ``None`` for a model
    without a deterministic autoencoder."""
    if not isinstance(model, ManifoldMLE | LatentFlowMLE):
        return None
    out = []
    for k in data.context.unique().tolist():
        x = data.x[data.context == k][:n]
        out.append(sliced_wasserstein(model.reconstruct(x).numpy(), x.numpy(), seed=seed))
    return float(np.mean(out))


@torch.no_grad()
def diagnose(model, ds, split, contexts, n: int, seed: int, normaliser,
             train=None) -> list[dict]:  # fmt: skip
    """Where a two-step model's composition error lives, context by context of ``contexts``:

    - ``x``: SWD of generated samples from the test rows, beside the same-law floor (a fresh
      draw of the true model) and ``x_dec``: the fresh draw passed through the model's encoder
      and decoder (``decode(encode(x))``), against the test rows: the generator's error when its
      concepts have exactly the law of the encoded data;
    - ``u``: SWD, in the space of the learned concepts, of the prior's samples under the
      context's targets from the encoded test rows, beside the encoded fresh draw against them
      (the same-law floor there);
    - ``x_data`` (given the training rows ``train``): SWD of samples composed with the noise
      the model abducts from those rows (``generate_from_data``: the model's structure, no
      fitted noise law), against the test rows.

    ``x`` far above its floor with ``x_dec`` at it and ``u`` far above its own floor: the error
    is the prior's law of the learned concepts, not the decoder."""
    from conceptid.floors import fresh_draw

    masks, names, K = ds.target_mask(), ds.context_names, model.K
    g = torch.Generator().manual_seed(seed)
    g_data = torch.Generator().manual_seed(seed + 1)  # its own: g's draws stay as they were
    out = []
    for k in contexts:
        x = split.x[split.context == k][:n]
        xf = torch.from_numpy(fresh_draw(ds, k, len(x), seed, normaliser))
        t = torch.from_numpy(np.repeat(masks[k][None], len(x), 0))
        u, uf = model.encode(x)[:, :K], model.encode(xf)[:, :K]
        a = x.numpy()
        out.append({
            "context": names[k],
            "x": sliced_wasserstein(model.generate(t, generator=g).numpy(), a, seed=seed),
            "x_floor": sliced_wasserstein(xf.numpy(), a, seed=seed),
            "x_dec": sliced_wasserstein(model.decode(model.encode(xf)).numpy(), a, seed=seed),
            "u": sliced_wasserstein(model.prior.sample(t, g).numpy(), u.numpy(), seed=seed),
            "u_floor": sliced_wasserstein(uf.numpy(), u.numpy(), seed=seed),
        })  # fmt: skip
        if train is not None:
            gen = model.generate_from_data(train.x, train.targets, torch.from_numpy(masks[k]),
                                           len(x), generator=g_data)  # fmt: skip
            out[-1]["x_data"] = sliced_wasserstein(gen.numpy(), a, seed=seed)
    return out


def probe_r2(train_x, train_c, test_x, test_c, seed: int, steps: int = 4000) -> np.ndarray:
    """R^2 per concept of an MLP (two hidden layers of 256 SiLU units, Adam, cosine schedule)
    fitted to predict the true concepts ``train_c`` from ``train_x`` (both standardised), on
    ``test_x``: how much of each concept a representation carries, whatever its alignment."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the net's initialisation, without touching the global stream
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(train_x.shape[1], 256), torch.nn.SiLU(),
                                  torch.nn.Linear(256, 256), torch.nn.SiLU(),
                                  torch.nn.Linear(256, train_c.shape[1]))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    mx, sx = train_x.mean(0), train_x.std(0) + 1e-8
    mc, sc = train_c.mean(0), train_c.std(0) + 1e-8
    for k in range(steps):
        idx = torch.randint(0, len(train_x), (256,), generator=g)
        loss = ((net((train_x[idx] - mx) / sx) - (train_c[idx] - mc) / sc) ** 2).mean()
        for group in opt.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * k / steps))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = net((test_x - mx) / sx) * sc + mc
    return (1 - ((pred - test_c) ** 2).mean(0) / test_c.var(0)).numpy()


def _print_probes(model, ds, tr, te, seed: int, r2) -> None:
    """Step 1 against step 2, concept by concept (a block's R^2: the mean over its
    coordinates): how much of each true concept the data, the frozen latent ``z`` and the learned
    concepts together carry; how much the learned concept alone carries, by an MLP (any
    function of it) and up to the class (an affine map: the evaluation's R^2). Together against
    alone by MLP is the entanglement; alone by MLP against affine is the learned concept's
    non-affine distortion."""
    K = model.K
    edges = np.cumsum([0, *ds.block_sizes])
    blocks = [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]
    with torch.no_grad():
        u_tr, u_te = model.encode(tr.x)[:, :K], model.encode(te.x)[:, :K]
        reps = {"x": (tr.x, te.x), "z": (model.latent(tr.x), model.latent(te.x)),
                "u, concepts together": (u_tr, u_te)}  # fmt: skip
    print(f"seed {seed} probes: R^2 of each true concept (an MLP fitted on the training rows, "
          "scored on the test rows of the training contexts)")  # fmt: skip
    for name, (a, b) in reps.items():
        r = probe_r2(a, tr.concepts, b, te.concepts, seed)
        print(f"  from {name:<21}" + " ".join(f"{r[i].mean():.3f}" for i in blocks))
    alone = [probe_r2(u_tr[:, i], tr.concepts[:, i], u_te[:, i], te.concepts[:, i], seed).mean()
             for i in blocks]  # fmt: skip
    print(f"  {'u_j alone, MLP':<26}" + " ".join(f"{v:.3f}" for v in alone))
    print(f"  {'u_j alone, affine':<26}" + " ".join(f"{v:.3f}" for v in r2))


def _print_diagnosis(rows: list[dict], held: bool) -> None:
    for r in rows:
        print(f"  {r['context']:<16}{'held out' if held else 'training':<10}"
              f"x {r['x']:.4f} (floor {r['x_floor']:.4f}, {r['x'] / r['x_floor']:.2f}x; "
              f"decode(encode(fresh)) {r['x_dec']:.4f})   concepts: prior {r['u']:.4f} "
              f"(floor {r['u_floor']:.4f}, {r['u'] / r['u_floor']:.2f}x)"
              + (f"   with the data's noise x {r['x_data']:.4f} "
                 f"({r['x_data'] / r['x_floor']:.2f}x)" if "x_data" in r else ""))  # fmt: skip
    if rows and "x_data" in rows[0]:
        mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
        print(f"  mean over the {'held-out' if held else 'training'} contexts: x "
              f"{mean('x'):.4f}, with the data's noise {mean('x_data'):.4f} "
              f"(floor {mean('x_floor'):.4f})")  # fmt: skip


def _noise(nc: dict) -> str:
    """The noise check of the training contexts in brief: Bartlett's statistics summed over
    the contexts per degree of freedom (about 1 when the noise is independent), and the
    Bonferroni p-value."""
    return f"{nc['statistic_per_dof']:.2f}/dof (p {nc['bonferroni_p']:.2g})"


def _restarts(seed: int, name: str, hist: dict) -> str:
    """The restarts' selection scores (``fit_restarts``: lower is better; for the two-step fits
    the validation NLL in nats) and the one kept: how clear the choice was."""
    scores = hist["restart_scores"]
    shown = ", ".join(f"{v:.4f}" for v in scores)
    return f"seed {seed} {name}: restart scores {shown}; kept restart {hist['restart']}"


def _num(v: float, form: str = "{:.4f}") -> str:
    """``v`` in ``form``, or ``n/a`` for a floor the data do not allow (NaN)."""
    return "n/a" if np.isnan(v) else form.format(v)


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def _checked(ap: argparse.ArgumentParser, a: argparse.Namespace):
    """The seeds, methods, preset and flow arguments, every one checked before any work: a
    bad one is refused in one line with exit status 2 (``ap.error``)."""
    at_least(ap, a, ("epochs", "n", "restarts", "threads"))
    if a.n_test < 500:
        ap.error(f"--n-test must be at least 500 (a ratio of SWDs needs it), got {a.n_test}")
    seeds = int_list(ap, "--seeds", a.seeds, minimum=0)
    methods = name_list(ap, "--methods", a.methods, METHODS, "method")
    preset_args: dict = {"image_size": 32} if a.preset == "quad" else {}
    if a.independent:
        preset_args["dependent"] = False
    preset_args |= key_json(ap, "--preset-arg", a.preset_arg)
    if preset_args.get("mixing", "image") != "image":
        preset_args.pop("image_size", None)
    flow_args = key_json(ap, "--flow-arg", a.flow_arg)
    try:  # the preset and its arguments, then the model the flow arguments go to (no training)
        cm = BenchmarkSpec(preset=a.preset, preset_args=preset_args, seed=seeds[0]).build_model()
    except ConceptIDError as err:
        ap.error(f"--preset {a.preset} with {preset_args}: {err}")
    if len(cm.all_contexts) == len(cm.contexts):
        ap.error(f"--preset {a.preset} with {preset_args} holds out no composition of "
                 "interventions: this benchmark measures compositions never seen in "
                 "training")  # fmt: skip
    shape = tuple(cm.mixing.output_shape)  # images: (H, W, 3), the models take (3, H, W)
    if len(shape) == 3:
        vector_methods_on_images(ap, methods, METHODS, f"this --preset {a.preset} makes images")
    fixed = sorted({"prior", "use_labels"} & set(flow_args))
    if fixed:  # the methods' builders set these themselves
        ap.error(f"--flow-arg: {', '.join(fixed)} is set by the method (context-flow or its "
                 "ablation), not here")  # fmt: skip
    if flow_args:
        try:  # options the registry's methods take (not an encoder, a switch as a boolean)
            flow_args = check_options("context-flow", flow_args)
        except ConceptIDError as err:
            ap.error(f"--flow-arg: {err}")
        images = len(shape) == 3
        shape = (shape[2], shape[0], shape[1]) if images else shape
        builds = [("", {})]  # the arguments go to the ablation too, when it runs
        if "context-flow-ablation" in methods:
            builds.append((", for context-flow-ablation", {"use_labels": False}))
        for where, fixed_args in builds:
            try:
                schedule = flow_schedule(a.epochs, images, **flow_args)
                LatentFlowMLE(shape, cm.sem.block_sizes, cm.nuisance_dim, **fixed_args,
                              **schedule)  # fmt: skip
            except (TypeError, ValueError, ConceptIDError) as err:
                ap.error(f"--flow-arg{where}: {err}")
    return seeds, methods, preset_args, flow_args


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__)
    ap.add_argument("--preset", default="quad")
    ap.add_argument("--independent", action="store_true", help="quad: the independent scene")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n", type=int, default=500, help="training samples per context")
    ap.add_argument("--n-test", type=int, default=500, help="test samples per context (>= 500)")
    ap.add_argument("--methods", default="context-flow,context-flow-ablation,pooled")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--restarts", type=int, default=1,
                    help="fits per method and seed, the best kept by validation likelihood (the "
                         "VAEs: by their validation loss)")  # fmt: skip
    ap.add_argument("--preset-arg", action="append", default=[], metavar="KEY=JSON",
                    help="extra preset argument, e.g. mixing='\"identity\"'")  # fmt: skip
    ap.add_argument("--diagnose", action="store_true",
                    help="per context, for the two-step models: generated samples and the "
                         "decoder against their floors, and the prior in the space of the "
                         "learned concepts (where a composition's error lives)")  # fmt: skip
    ap.add_argument("--flow-arg", action="append", default=[], metavar="KEY=JSON",
                    help="an argument of LatentFlowMLE for context-flow and its ablation in this "
                         "run only, e.g. flow_layers=10 or snap_every=1")  # fmt: skip
    a = ap.parse_args(argv)
    seeds, methods, preset_args, flow_args = _checked(ap, a)
    torch.set_num_threads(a.threads)
    # the construction options of the two-step methods, recorded with their models as
    # `conceptid run --method-arg context-flow:KEY=VALUE` records them
    options = {name: flow_args for name in ("context-flow", "context-flow-ablation")}
    rows: dict = {m: [] for m in methods}
    floors: list[dict] = []
    names: list[str] = []
    for seed in seeds:
        spec = BenchmarkSpec(preset=a.preset, preset_args=preset_args, n_train=a.n,
                             n_val=max(100, a.n // 5), n_test=a.n_test, seed=seed)  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            ds = ensure_data(spec, out, progress=False)
            names = list(ds.concept_names)
            norm, parts = splits(ds)
            _, (_, _, te, held) = norm, parts
            train_ids, held_ids = ds.training_contexts, ds.held_out_contexts
            fs = floor_summary(ds, (norm, parts), a.n_test, seed)
            if fs["oracle_sem_not_applied"] is not None:
                print(f"seed {seed}: no oracle SEM floor: {fs['oracle_sem_not_applied']}")
            nan = lambda v: np.nan if v is None else v  # noqa: E731
            floors.append({
                "concept_same": fs["concept"]["same"],
                "concept_obs": nan(fs["concept"]["observational"]),
                "composition_same": fs["composition"]["same"],
                "composition_obs": nan(fs["composition"]["observational"]),
                "composition_oracle": nan(fs["composition"]["oracle_sem"]),
            })  # fmt: skip
            print(f"seed {seed} floors: concept same {floors[-1]['concept_same']:.4f} obs "
                  f"{floors[-1]['concept_obs']:.4f}; composition same "
                  f"{floors[-1]['composition_same']:.4f} obs "
                  f"{floors[-1]['composition_obs']:.4f} oracle SEM "
                  f"{_num(floors[-1]['composition_oracle'])}", flush=True)  # fmt: skip
            for name in methods:
                t0 = time.perf_counter()
                model, hist = train_method(name, ds, out, seed=seed, epochs=a.epochs,
                                           progress=False, data_splits=(norm, parts),
                                           restarts=a.restarts,
                                           options=options.get(name))  # fmt: skip
                sec = time.perf_counter() - t0
                if hist.get("restart_scores"):
                    print(_restarts(seed, name, hist), flush=True)
                m = evaluate_method(name, model.eval(), ds, seed, n_generate=a.n_test,
                                    data_splits=(norm, parts))  # fmt: skip
                m["seconds"] = sec
                m["reconstruction_swd"] = reconstruction_swd(model, te, a.n_test, seed)
                m["composition_x_floor"] = m["composition_swd"] / floors[-1]["composition_same"]
                rows[name].append(m)
                if a.diagnose and isinstance(model, LatentFlowMLE) and model.can_intervene:
                    if ds.has_ground_truth and not ds.is_image:
                        _print_probes(model, ds, parts[0], te, seed, m["r2"])
                    print(f"seed {seed} {name}: where the error lives", flush=True)
                    _print_diagnosis(diagnose(model, ds, te, train_ids, a.n_test, seed, norm,
                                              train=parts[0]), held=False)  # fmt: skip
                    _print_diagnosis(diagnose(model, ds, held, held_ids, a.n_test, seed, norm,
                                              train=parts[0]), held=True)  # fmt: skip
                rec, nc = m["reconstruction_swd"], m["noise_check"]["training"]
                print(f"seed {seed} {name:<22} mean R2 {m['mean_r2']:.3f} (min "
                      f"{min(m['r2']):.3f})  concept SWD "
                      f"{m['concept_swd']:.4f}  composition SWD {m['composition_swd']:.4f}  "
                      + (f"reconstruction SWD {rec:.4f}  " if rec is not None else "")
                      + (f"noise check {_noise(nc)}  " if nc else "")
                      + f"{sec:.0f} s", flush=True)  # fmt: skip
    scene = "independent" if a.independent else "dependent"
    extra = [f"{k}={v}" for k, v in preset_args.items() if k not in ("image_size", "dependent")]
    title = f"{a.preset} ({', '.join([scene, *extra])})" if a.preset == "quad" else a.preset
    print(f"\n{title}, {a.n} training / {a.n_test} test samples per context, {a.epochs} epochs, "
          f"seeds {seeds}, {a.threads} torch threads"
          + (f", {a.restarts} restarts" if a.restarts > 1 else "")
          + (f", context-flow arguments {flow_args}" if flow_args else ""))  # fmt: skip
    fl = {k: float(np.mean([f[k] for f in floors])) for k in floors[0]}
    print(f"floors (mean over seeds): concept SWD same-law {fl['concept_same']:.4f}, "
          f"observational {fl['concept_obs']:.4f}; composition SWD same-law "
          f"{fl['composition_same']:.4f}, observational {fl['composition_obs']:.4f}, oracle "
          f"SEM {_num(fl['composition_oracle'])}")  # fmt: skip
    peers = [p for p in ("pooled", "context-flow-ablation") if p in rows and rows[p]]
    head = f"{'method':<48}{'mean R2':>8}{'concept SWD':>13}{'composition SWD':>17}"
    short = {"pooled": "vs pooled", "context-flow-ablation": "vs ablation"}
    head += "".join(f"{short[p]:>20}" for p in peers) + f"{'time [s]':>10}"
    print(head)
    for name in methods:
        rs = rows[name]
        comp, conc = _mean(rs, "composition_swd"), _mean(rs, "concept_swd")
        line = f"{METHODS[name].label:<48}{_mean(rs, 'mean_r2'):>8.3f}{conc:>13.4f}{comp:>17.4f}"
        for p in peers:
            pc, pk = _mean(rows[p], "composition_swd"), _mean(rows[p], "concept_swd")
            line += f"{f'{comp / pc:.3f}x / {conc / pk:.3f}x':>20}"
        print(line + f"{_mean(rs, 'seconds'):>10.0f}")
    print("(vs columns: composition ratio / concept ratio, means over seeds)")
    # recovery up to the class, concept by concept (the identifiable variant's goal: >= 0.9 each)
    width = max(len(n) for n in names)
    print("per-concept R2 up to the class, mean over seeds [min over seeds]:")
    print(f"{'method':<24}" + "".join(f"{n:>{max(width, 13) + 1}}" for n in names))
    for name in methods:
        r2 = np.array([r["r2"] for r in rows[name]])  # (seeds, concepts)
        cells = [f"{m:.3f} [{lo:.3f}]" for m, lo in zip(r2.mean(0), r2.min(0))]
        print(f"{name:<24}" + "".join(f"{c:>{max(width, 13) + 1}}" for c in cells))
    ratios = [f["composition_oracle"] / f["composition_same"] for f in floors]
    print("composition SWD over the same-law floor, per seed (mean): "
          + "; ".join(f"{n} " + " ".join(f"{r['composition_x_floor']:.2f}x" for r in rows[n])
                      + f" ({_mean(rows[n], 'composition_x_floor'):.2f}x)" for n in methods)
          + "; oracle SEM " + " ".join(_num(r, "{:.2f}x") for r in ratios)
          + f" ({_num(float(np.mean(ratios)), '{:.2f}x')})")  # fmt: skip
    print(
        "per-seed composition SWD: "
        + "; ".join(
            f"{n} " + " ".join(f"{r['composition_swd']:.4f}" for r in rows[n]) for n in methods
        )
    )
    print(
        "goals: dependent composition <= 0.5x pooled, concept <= 0.6x; independent composition "
        "<= 0.3x; composition at least 40% below the labels-ignored ablation; identifiable "
        "variant (--preset-arg identifiable=true): R2 up to the class >= 0.9 for every concept"
    )


if __name__ == "__main__":
    main()
