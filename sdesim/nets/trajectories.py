r"""GD and SGD on a real network against gradient flow and the modified flows.

One initialisation ``w0`` of a smooth (tanh) network, a fixed time ``t = k lr``, several
learning rates. Backward error analysis predicts, over the fixed time, the largest
weight-space distance

- between GD and gradient flow :math:`O(lr)`, the order-1 modified flow
  :math:`\dot w = -\nabla(C + \frac{lr}{4}|\nabla C|^2)` :math:`O(lr^2)` (Barrett & Dherin 2021),
  the order-2 modified flow :math:`O(lr^3)`;
- between the *mean* SGD iterate (``m`` fixed batches of size ``B`` in a random order every
  epoch, ``sampling="fixed"``) at the ends of epochs and gradient flow :math:`O(lr)`, and Smith,
  Dherin, Barrett & De's (2021) flow of
  :math:`\tilde C_{SGD} = C + \frac{lr}{4m}\sum_k |\nabla C_k|^2` :math:`O(lr^2)`.

The SGD mean is over ``R`` seeds. Its Monte Carlo error is subtracted: with :math:`\bar w` the
ensemble mean, :math:`\hat\Sigma` the ensemble covariance and :math:`f` the flow,
:math:`\hat d^2 = |\bar w - f|^2 - \mathrm{tr}\hat\Sigma / R` is unbiased for
:math:`|E w - f|^2`, with standard error
:math:`\sqrt{4\,\delta^\top\hat\Sigma\delta / R + 2\,\mathrm{tr}(\hat\Sigma^2)/R^2}` (``delta = w-bar - f``);
the reported distance is :math:`\hat d` at the epoch end where it is largest, and its
``floor`` :math:`\sqrt{\mathrm{tr}\hat\Sigma / R}` is what the raw distance would be with no bias.
Slopes of :math:`\log d` against :math:`\log lr` come from :func:`sdesim.linalg.fit_line` (SGD:
weighted by the Monte Carlo variance of :math:`\log\hat d`), with 95% intervals
``slope +- t_{0.975, n-2} se``.

Every run goes through :func:`sdesim.simulate` on a :class:`~sdesim.nets.NetworkLoss`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from sdesim.errors import ConfigError
from sdesim.linalg import fit_line
from sdesim.nets.data import load
from sdesim.nets.mlp import MLP
from sdesim.nets.network_loss import NetworkLoss
from sdesim.nets.objective import MLPObjective

__all__ = ["Slope", "TrajectoryReport", "fit_slope", "gd_vs_flows", "plot_trajectories", "sgd_mean_vs_flows",
           "small_network", "trajectories"]

#: The comparisons, their flows and the slope backward error analysis predicts.
EXPECTED = {"gd/gradient_flow": 1.0, "gd/modified_1": 2.0, "gd/modified_2": 3.0,
            "sgd/gradient_flow": 1.0, "sgd/modified_sgd": 2.0}


@dataclass(frozen=True)
class Slope:
    """Fitted slope of ``log d`` against ``log lr``: estimate, standard error, 95% interval, the expected value."""

    estimate: float
    se: float
    ci: tuple[float, float]
    expected: float


def fit_slope(lrs, d, weights=None, expected=float("nan")) -> Slope:
    """Least-squares slope of ``log d`` on ``log lr`` (:func:`sdesim.linalg.fit_line`), 95% t-interval."""
    from scipy.stats import t as student

    fit = fit_line(np.log(lrs), np.log(d), weights)
    half = float(student.ppf(0.975, max(len(lrs) - 2, 1))) * fit.slope_se
    return Slope(float(fit.slope), float(fit.slope_se), (float(fit.slope - half), float(fit.slope + half)),
                 float(expected))


def small_network(n=128, hidden=16, seed=0, data="digits"):
    """``(NetworkLoss, w0)``: a tanh MLP ``(d, hidden, k)``, cross-entropy, on the first ``n`` training samples."""
    train, _ = load(data)
    net = MLP((train.n_features, int(hidden), train.n_classes), "tanh", "cross_entropy", 0.0)
    return NetworkLoss(MLPObjective(net, train.x[:n], train.y[:n])), net.init(seed)


def gd_vs_flows(loss, w0, lrs, t_end):
    """Largest distance over ``t = k lr <= t_end`` between GD and each flow, per ``lr``, and the loss curves.

    Returns ``(distances {name: (L,)}, curves {lr: {label: (t, C)}})``.
    """
    import sdesim as sd

    out = {name: np.empty(len(lrs)) for name in ("gd/gradient_flow", "gd/modified_1", "gd/modified_2")}
    curves = {}
    for i, lr in enumerate(lrs):
        steps = _steps(t_end, lr)
        gd = sd.simulate(loss, sd.GD(lr), w0, steps=steps, progress=False)
        curves[lr] = {"GD": (gd.t, gd.loss[:, 0])}
        for name, dyn in (("gd/gradient_flow", sd.GradientFlow()), ("gd/modified_1", sd.ModifiedFlow(lr, 1)),
                          ("gd/modified_2", sd.ModifiedFlow(lr, 2))):
            flow = sd.simulate(loss, dyn, w0, steps=steps, dt=lr, progress=False)
            out[name][i] = np.max(np.linalg.norm(gd.w[:, 0] - flow.w[:, 0], axis=1))
            curves[lr][dyn.label] = (flow.t, flow.loss[:, 0])
    return out, curves


def sgd_mean_vs_flows(loss, w0, lrs, t_end, batch_size, n_seeds, seed=0):
    """The mean of ``n_seeds`` SGD runs (fixed batches, random order) at the ends of epochs against
    gradient flow and Smith et al.'s flow, Monte Carlo error subtracted (module docstring).

    Returns ``(distances, standard errors, floors, curves)``: the first three ``{name: (L,)}``,
    ``curves {lr: {label: (t, C)}}``: ``C`` of the mean iterate and of Smith et al.'s flow at the ends of epochs.
    """
    import sdesim as sd

    m = loss.n_samples // batch_size
    names = ("sgd/gradient_flow", "sgd/modified_sgd")
    dist, se, floor = ({name: np.empty(len(lrs)) for name in names} for _ in range(3))
    curves = {}
    for i, lr in enumerate(lrs):
        steps = _steps(t_end, lr)
        if steps % m:
            raise ConfigError(f"t_end / lr = {steps} steps is not a whole number of epochs of {m} batches")
        run = sd.simulate(loss, sd.SGD(lr, batch_size=batch_size, sampling="fixed"), w0, n_particles=n_seeds,
                          steps=steps, record_every=m, seed=seed, progress=False)
        mean = run.w.mean(axis=1)
        centred = run.w - mean[:, None, :]
        gram = np.einsum("tip,tjp->tij", centred, centred) / (n_seeds - 1)        # R x R per time
        trace = np.einsum("tii->t", gram)
        trace_sq = np.einsum("tij,tji->t", gram, gram)
        curves[lr] = {f"SGD mean (R = {n_seeds})": (run.t, loss.value(mean))}
        for name, dyn in zip(names, (sd.GradientFlow(), sd.ModifiedFlow(lr, kind="sgd", batch_size=batch_size))):
            flow = sd.simulate(loss, dyn, w0, steps=steps, dt=lr, record_every=m, progress=False)
            delta = mean - flow.w[:, 0]
            d2 = np.sum(delta**2, axis=1) - trace / n_seeds
            j = int(np.argmax(d2))
            proj = centred[j] @ delta[j]
            var_d2 = 4 * float(proj @ proj) / (n_seeds - 1) / n_seeds + 2 * trace_sq[j] / n_seeds**2
            dist[name][i] = np.sqrt(max(d2[j], 0.0))
            se[name][i] = np.sqrt(var_d2) / (2 * max(dist[name][i], 1e-300))
            floor[name][i] = np.sqrt(trace[j] / n_seeds)
            if name == "sgd/modified_sgd":          # gradient flow's curve comes from gd_vs_flows, at every step
                curves[lr][dyn.label] = (flow.t, flow.loss[:, 0])
    return dist, se, floor, curves


def _steps(t_end, lr):
    steps = round(t_end / lr)
    if abs(steps * lr - t_end) > 1e-9 * t_end:
        raise ConfigError(f"t_end = {t_end} is not a whole number of steps of lr = {lr}")
    return steps


@dataclass(frozen=True, eq=False)
class TrajectoryReport:
    """Distances, slopes and loss curves of :func:`trajectories`."""

    lrs: tuple
    t_end: float
    distances: dict
    distance_se: dict
    floors: dict
    slopes: dict
    settings: dict
    curves: dict = field(repr=False, default_factory=dict)
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"lrs": list(self.lrs), "t_end": self.t_end,
                "distances": {k: v.tolist() for k, v in self.distances.items()},
                "distance_se": {k: v.tolist() for k, v in self.distance_se.items()},
                "mc_floors": {k: v.tolist() for k, v in self.floors.items()},
                "slopes": {k: asdict(s) for k, s in self.slopes.items()},
                "settings": self.settings, "timings": self.timings}


def trajectories(quick=False, t_end=None, epochs=None, n=128, hidden=16, batch_size=32, n_seeds=None,
                 seed=0) -> TrajectoryReport:
    r"""GD/SGD against gradient flow and the modified flows on a small tanh MLP (module docstring).

    The learning rates are ``lr = t_end / (m E)`` for ``E`` in ``epochs`` (``m = n / B`` batches), so
    every run ends on an epoch. Defaults: ``t_end = 3.2``, ``E = 2, 4, 8, 16, 32``
    (``lr = 0.4 .. 0.025``), ``R = 400`` SGD seeds; ``quick``: ``t_end = 1.6``, ``E = 2, 4, 8, 16``, ``R = 100``.
    The net: :func:`small_network` (64-16-10 on 128 digits, ``P = 1210``).
    """
    t_end = float(t_end or (1.6 if quick else 3.2))
    epochs = tuple(epochs or ((2, 4, 8, 16) if quick else (2, 4, 8, 16, 32)))
    n_seeds = int(n_seeds or (100 if quick else 400))
    if n % batch_size:
        raise ConfigError(f"n = {n} must be a multiple of batch_size = {batch_size} (fixed batches)")
    if len(epochs) < 3 or n_seeds < 2:
        raise ConfigError(f"need at least 3 learning rates and 2 seeds, got {len(epochs)} and {n_seeds}")
    m = n // batch_size
    lrs = tuple(t_end / (m * e) for e in epochs)
    loss, w0 = small_network(n, hidden, seed)
    t0 = time.perf_counter()
    gd, curves = gd_vs_flows(loss, w0, lrs, t_end)
    t1 = time.perf_counter()
    sgd, sgd_se, sgd_floor, sgd_curves = sgd_mean_vs_flows(loss, w0, lrs, t_end, batch_size, n_seeds, seed)
    t2 = time.perf_counter()
    for lr in lrs:
        curves[lr].update(sgd_curves[lr])
    distances = {**gd, **sgd}
    slopes = {name: fit_slope(lrs, d, expected=EXPECTED[name]) for name, d in gd.items()}
    for name, d in sgd.items():
        rel = sgd_se[name] / d
        slopes[name] = fit_slope(lrs, d, weights=1.0 / rel**2, expected=EXPECTED[name])
    zeros = np.zeros(len(lrs))
    settings = {"net": list(loss.objective.net.sizes), "activation": "tanh", "loss": "cross_entropy",
                "n": n, "P": loss.dim, "batch_size": batch_size, "batches_per_epoch": m, "epochs": list(epochs),
                "n_seeds": n_seeds, "seed": seed, "sampling": "fixed", "quick": bool(quick)}
    return TrajectoryReport(lrs, t_end, distances, {**dict.fromkeys(gd, zeros), **sgd_se},
                            {**dict.fromkeys(gd, zeros), **sgd_floor}, slopes, settings, curves,
                            {"gd_flows_s": t1 - t0, "sgd_s": t2 - t1})


def format_slopes(report: TrajectoryReport) -> str:
    """The distances per ``lr`` and the fitted slopes, as a Markdown table."""
    lrs = report.lrs
    head = "| comparison | " + " | ".join(f"d (lr={lr:.3g})" for lr in lrs) + " | slope | 95% CI | expected |"
    lines = [head, "|" + " --- |" * (len(lrs) + 4)]
    for name, s in report.slopes.items():
        d = report.distances[name]
        cells = " | ".join(f"{x:.3g}" for x in d)
        lines.append(f"| {name} | {cells} | {s.estimate:.2f} +- {s.se:.2f} | [{s.ci[0]:.2f}, {s.ci[1]:.2f}] | "
                     f"{s.expected:g} |")
    floor = report.floors["sgd/modified_sgd"]
    lines.append(f"\nSGD Monte Carlo floor sqrt(tr Cov / R) per lr: {', '.join(f'{x:.2g}' for x in floor)} "
                 f"(subtracted in quadrature; R = {report.settings['n_seeds']})")
    return "\n".join(lines)


def plot_trajectories(report: TrajectoryReport, path=None, lr=None):
    """Training loss of every dynamic at one ``lr`` (default the second largest), its difference from GD's,
    and the distances against ``lr`` with the fitted slopes. Returns the figure (saved to ``path``)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from sdesim import plot

    lr = sorted(report.lrs)[-2] if lr is None else lr
    fig, (a, c, b) = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    curves = report.curves[lr]
    t_gd, c_gd = curves["GD"]
    for i, (label, (t, loss)) in enumerate(curves.items()):
        kw = {"color": "k", "lw": 2.2} if label == "GD" else {"color": f"C{i}", "lw": 1.2,
                                                                  "ls": "--" if "flow" in label else "-"}
        if "SGD" in label:                                   # recorded at the ends of epochs
            kw["marker"] = "o"
        a.plot(t, loss, label=label, **kw)
        if label != "GD":
            c.plot(t, loss - np.interp(t, t_gd, c_gd), label=label, **kw)
    a.set(xlabel="t = k lr", ylabel="training loss C", title=f"one initialisation, lr = {lr:.3g}")
    c.axhline(0.0, color="k", lw=1)
    c.set(xlabel="t = k lr", ylabel="C - C(GD)", title="loss minus GD's (SGD: C of the mean iterate)")
    plot.legend(a, fontsize=7)
    plot.legend(c, fontsize=7)
    lrs = np.array(report.lrs)
    for i, (name, s) in enumerate(report.slopes.items()):
        b.loglog(lrs, report.distances[name], "o-" if name.startswith("gd") else "s--", color=f"C{i}",
                 label=f"{name}: {s.estimate:.2f} (expected {s.expected:g})")
    b.loglog(lrs, report.floors["sgd/modified_sgd"], ":", color="0.5", label="SGD Monte Carlo floor")
    b.set_xticks(lrs, [f"{x:.3g}" for x in lrs])
    b.xaxis.set_minor_formatter(NullFormatter())
    b.set(xlabel="learning rate lr", ylabel=f"max distance over t <= {report.t_end:g}",
          title="distance to the flows: fitted slopes")
    plot.legend(b, fontsize=7)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def run(out=None, quick=False, model="digits_mlp", seed=0, progress=True) -> dict:
    """``sdesim net-vs-theory --trajectories``: :func:`trajectories` and the transients of
    :func:`sdesim.nets.transients.net_transients` on ``model``; prints both tables and writes
    ``trajectories.json``, ``trajectories.png`` and ``transients.png`` under ``out``.

    ``quick``: the short trajectories settings and transients at ``lr h_1 = 0.25, 1, 1.5`` on two
    directions with 100 seeds (default: ``0.1, 0.25, 0.5, 1, 1.5``, three directions, 1000 seeds).
    """
    import json
    from pathlib import Path

    from sdesim.nets import transients as tr

    t0 = time.perf_counter()
    report = trajectories(quick=quick, seed=seed)
    if progress:
        print(format_slopes(report), flush=True)
    settings = {"lr_h1s": (0.25, 1.0, 1.5), "directions": 2, "n_seeds": 100} if quick else {"n_seeds": 1000}
    rows, curves, info = tr.net_transients(model, seed=seed, **settings)
    if progress:
        print("\n" + tr.format_transients(rows), flush=True)
    total = time.perf_counter() - t0
    doc = {**report.to_dict(), "transients": {"rows": tr.rows_to_dicts(rows), **info}, "total_s": total,
           "figures": ["trajectories.png", "transients.png"]}
    if out is not None:
        import matplotlib.pyplot as plt

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        plt.close(plot_trajectories(report, out / "trajectories.png"))
        plt.close(tr.plot_transients(rows, curves, out / "transients.png"))
        (out / "trajectories.json").write_text(json.dumps(doc, indent=1))
        if progress:
            print(f"\nwrote {out / 'trajectories.json'}, trajectories.png, transients.png ({total:.1f} s)")
    return doc
