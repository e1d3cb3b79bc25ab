r"""Transients of real SGD against the extracted quadratic model.

Real SGD (replacement sampling, batch ``B``, an ensemble of ``R`` seeds, through
:func:`sdesim.simulate` on a :class:`~sdesim.nets.NetworkLoss`) starts at
:math:`w_0 = w^* + \sum_j a_j v_j` along the top Hessian eigenvectors of an
:class:`~sdesim.nets.Extraction`. In the coordinates :math:`u = V^\top (w - w^*)` the model
(:math:`H`, :math:`S`, ``k`` directions) predicts

- **discrete** (the model's exact recursion): mean :math:`(I - lr H)^k a`, covariance
  :math:`P_{k+1} = A P_k A^\top + \frac{lr^2}{B} S`, :math:`A = I - lr H`, :math:`P_0 = 0`;
- **SDE** (exact Ornstein-Uhlenbeck, :math:`t = k\, lr`): mean :math:`e^{-H t} a`, covariance
  :math:`P_{ij}(t) = \frac{lr}{B} \tilde S_{ij} \frac{1 - e^{-(h_i + h_j) t}}{h_i + h_j}` in the
  eigenbasis of :math:`H`;
- **simulated**: SGD on the model itself (:func:`sdesim.simulate` on the
  :class:`~sdesim.QuadraticModel`, Gaussian noise :math:`S / B`, ``n_particles``), a Monte Carlo
  estimate of the discrete recursion.

Each is compared with the real ensemble over the whole trajectory ``k = 0..K`` by the relative
error :math:`\|\hat x - x\|_2 / \|x\|_2` of the mean and of the variance of each :math:`u_j`, next
to the Monte Carlo floor of the same norm (standard errors :math:`\sqrt{\hat v_k / R}` and
:math:`\hat v_k \sqrt{2 / (R - 1)}`): an error well above its floor is a failure of the theory.
Each row also gives the gradient noise along :math:`v_j` at the start,
:math:`v_j^\top \Sigma_1(w_0) v_j / S_{jj}`, which the model takes to be 1.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from sdesim.errors import ConfigError, ShapeError
from sdesim.nets.extract import Extraction
from sdesim.nets.network_loss import NetworkLoss
from sdesim.nets.objective import Objective
from sdesim.reducers import Reducer

__all__ = ["ProjectedMoments", "TransientRow", "discrete_moments", "net_transients", "ou_moments",
           "plot_transients", "transient"]

THEORIES = ("discrete", "sde", "simulated")


class ProjectedMoments(Reducer):
    """Per recorded time: mean and variance over particles of ``u = (w - w_ref) V``."""

    name = "projected_moments"

    def __init__(self, basis, w_ref):
        self.basis, self.w_ref = np.asarray(basis, dtype=float), np.asarray(w_ref, dtype=float)
        self.t, self.mean, self.var = [], [], []

    def update(self, t, w):
        for ti, wi in zip(np.atleast_1d(t), w):
            u = (wi - self.w_ref) @ self.basis
            self.t.append(float(ti))
            self.mean.append(u.mean(axis=0))
            self.var.append(u.var(axis=0, ddof=1))

    def result(self) -> dict:
        return {"t": np.array(self.t), "mean": np.array(self.mean), "var": np.array(self.var)}


def discrete_moments(H, S, a, lr, batch_size, steps):
    r"""Mean ``(K+1, k)`` and variance ``(K+1, k)`` of the model's SGD from ``u_0 = a`` (exact recursion)."""
    A = np.eye(len(a)) - lr * H
    Q = lr**2 / batch_size * S
    mean, P = np.empty((steps + 1, len(a))), np.zeros_like(H)
    var = np.empty_like(mean)
    u = np.asarray(a, dtype=float)
    for k in range(steps + 1):
        mean[k], var[k] = u, np.diag(P)
        u, P = A @ u, A @ P @ A.T + Q
    return mean, var


def ou_moments(H, S, a, lr, batch_size, steps):
    r"""Mean and variance of the SGD diffusion's exact OU solution at ``t = k lr``, ``k = 0..K``."""
    h, U = np.linalg.eigh(H)
    t = lr * np.arange(steps + 1)[:, None]
    a_e, S_e = U.T @ a, U.T @ S @ U
    mean = (np.exp(-h * t) * a_e) @ U.T
    s = h[:, None] + h[None, :]
    frac = np.where(s > 0, -np.expm1(-s[None] * t[:, :, None]) / np.where(s > 0, s, 1.0), t[:, :, None])
    P = lr / batch_size * S_e[None] * frac
    var = np.einsum("ia,tab,ib->ti", U, P, U)
    return mean, var


@dataclass(frozen=True)
class TransientRow:
    """One direction at one ``lr``: relative errors of each theory (mean, variance) and their floors."""

    lr_h1: float
    lr: float
    direction: int
    h: float
    amplitude: float
    steps: int
    mean_error: dict
    var_error: dict
    mean_floor: float
    var_floor: float
    noise_start: float


def _rel(x_hat, x):
    return float(np.linalg.norm(x_hat - x) / np.linalg.norm(x))


def transient(objective: Objective, ext: Extraction, lr, batch_size, amplitudes, steps, n_seeds=200,
              n_particles=10_000, seed=0):
    """Real SGD from ``w* + V a`` against the three theories (module docstring).

    ``amplitudes`` ``a`` over the first ``len(a)`` directions (the others start at 0);
    returns ``(curves, rows)``: ``curves[name] = (mean (K+1, D), var (K+1, D))`` for ``"real"``
    and the theories, ``rows`` one :class:`TransientRow` per direction.
    """
    import sdesim as sd

    qm = ext.model
    a_top = np.asarray(amplitudes, dtype=float)
    D, k = len(a_top), qm.dim
    if not 1 <= D <= k:
        raise ShapeError(f"give between 1 and {k} amplitudes, got {D}")
    if n_seeds < 2 or steps < 1:
        raise ConfigError(f"need n_seeds >= 2 and steps >= 1, got {n_seeds}, {steps}")
    a = np.zeros(k)
    a[:D] = a_top
    H, S = qm.H, qm.S
    moments = ProjectedMoments(ext.basis[:, :D], ext.w_star)
    sd.simulate(NetworkLoss(objective), sd.SGD(lr, batch_size=batch_size), ext.lift(a), n_particles=n_seeds,
                steps=steps, seed=seed, reducers=[moments], keep="final", progress=False)
    real = moments.result()
    sim = sd.simulate(qm, sd.SGD(lr, batch_size=batch_size), a, n_particles=n_particles, steps=steps,
                      seed=seed + 1, progress=False)
    curves = {"real": (real["mean"], real["var"]),
              "discrete": tuple(x[:, :D] for x in discrete_moments(H, S, a, lr, batch_size, steps)),
              "sde": tuple(x[:, :D] for x in ou_moments(H, S, a, lr, batch_size, steps)),
              "simulated": (sim.w[:, :, :D].mean(axis=1), sim.w[:, :, :D].var(axis=1, ddof=1))}
    h1 = qm.hessian_eigenvalues[0]
    GV = objective.sample_grad_products(ext.lift(a), ext.basis[:, :D])
    noise_start = GV.var(axis=0) / np.diag(S)[:D]
    rows = []
    m_hat, v_hat = curves["real"]
    for j in range(D):
        mean_se, var_se = np.sqrt(v_hat[:, j] / n_seeds), v_hat[1:, j] * np.sqrt(2 / (n_seeds - 1))
        ref_m, ref_v = curves["discrete"][0][:, j], curves["discrete"][1][1:, j]
        rows.append(TransientRow(
            float(lr * h1), float(lr), j + 1, float(qm.hessian_eigenvalues[j]), float(a_top[j]), int(steps),
            {name: _rel(m_hat[:, j], curves[name][0][:, j]) for name in THEORIES},
            {name: _rel(v_hat[1:, j], curves[name][1][1:, j]) for name in THEORIES},
            float(np.linalg.norm(mean_se) / np.linalg.norm(ref_m)),
            float(np.linalg.norm(var_se) / np.linalg.norm(ref_v)), float(noise_start[j])))
    return curves, rows


def net_transients(model="digits_mlp", lr_h1s=(0.1, 0.25, 0.5, 1.0, 1.5), directions=3, batch_size=128,
                   loss_increase=0.01, n_seeds=200, n_particles=10_000, relaxations=4.0, min_steps=12, seed=0):
    r"""Transients on a shipped (or saved) extraction for several ``lr h_1`` (module docstring).

    Starts at :math:`a_j = \sqrt{2 \Delta C / (D h_j)}` on the top ``D = directions`` (the model's
    loss increase :math:`\Delta C` = ``loss_increase``, shared equally) and runs
    ``K = max(min_steps, relaxations / (lr h_D))`` steps (``relaxations`` relaxation times of the
    slowest direction followed).
    Returns ``(rows, curves {lr_h1: curves}, info)``.
    """
    from sdesim.nets.loading import load_extraction
    from sdesim.nets.objective import MLPObjective

    t0 = time.perf_counter()
    ext, net, train_set = load_extraction(model)
    h = ext.model.hessian_eigenvalues
    D = int(directions)
    if not 1 <= D <= len(h) or h[D - 1] <= 0:
        raise ConfigError(f"directions must lie in [1, {len(h)}] with positive curvature, got {directions}")
    objective = MLPObjective(net, train_set.x, train_set.y)
    amplitudes = np.sqrt(2 * loss_increase / (D * h[:D]))
    rows, curves = [], {}
    for x in lr_h1s:
        lr = float(x) / h[0]
        steps = int(max(min_steps, np.ceil(relaxations / (lr * h[D - 1]))))
        curves[float(x)], r = transient(objective, ext, lr, batch_size, amplitudes, steps, n_seeds, n_particles, seed)
        rows += r
    info = {"model": str(model), "batch_size": int(batch_size), "directions": D, "loss_increase": loss_increase,
            "amplitudes": amplitudes.tolist(), "n_seeds": int(n_seeds), "n_particles": int(n_particles),
            "sampling": "replacement", "seconds": time.perf_counter() - t0}
    return rows, curves, info


def format_transients(rows) -> str:
    """Markdown table: relative errors of each theory against real SGD, with the Monte Carlo floor."""
    lines = [("| lr h_1 | j | lr h_j | steps | mean: discrete / SDE / simulated | floor | "
             "variance: discrete / SDE / simulated | floor | noise at start |"), "|" + " --- |" * 9]
    for r in rows:
        me = " / ".join(f"{r.mean_error[n]:.3f}" for n in THEORIES)
        ve = " / ".join(f"{r.var_error[n]:.3f}" for n in THEORIES)
        lines.append(f"| {r.lr_h1:.2f} | {r.direction} | {r.lr * r.h:.2f} | {r.steps} | {me} | {r.mean_floor:.3f} | "
                     f"{ve} | {r.var_floor:.3f} | {r.noise_start:.2f} |")
    return "\n".join(lines)


def rows_to_dicts(rows):
    return [asdict(r) for r in rows]


def plot_transients(rows, curves, path=None, show=(0.25, 1.5)):
    """Mean and variance of ``u_1`` over time at two ``lr h_1`` (real SGD and the three theories),
    and the relative errors against ``lr h_1``. Returns the figure."""
    import matplotlib.pyplot as plt

    from sdesim import plot

    show = [x for x in show if x in curves] or list(curves)[:2]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    styles = {"real": {"color": "k", "lw": 2.2, "label": "real SGD"}, "discrete": {"color": "C0", "ls": "--"},
              "sde": {"color": "C1", "ls": ":"}, "simulated": {"color": "C2", "lw": 0.9}}
    for i, x in enumerate(show):
        for name, (m, v) in curves[x].items():
            k = np.arange(len(m))
            kw = dict(styles[name])
            kw.setdefault("label", name)
            kw["label"] = f"{kw['label']}, lr h1 = {x:g}"
            kw["alpha"] = 1.0 if i == 0 else 0.55
            axes[0].plot(k, m[:, 0] / m[0, 0], **kw)
            axes[1].plot(k[1:], v[1:, 0], **kw)
    axes[0].set(xlabel="SGD step k", ylabel="mean u_1 / a_1", title="mean along v_1")
    axes[1].set(xlabel="SGD step k", ylabel="variance of u_1", title="variance along v_1", yscale="log")
    first = [r for r in rows if r.direction == 1]
    x = [r.lr_h1 for r in first]
    for name, c in zip(THEORIES, ("C0", "C1", "C2")):
        axes[2].semilogy(x, [r.var_error[name] for r in first], "o-", color=c, label=f"variance: {name}")
        axes[2].semilogy(x, [r.mean_error[name] for r in first], "s--", color=c, label=f"mean: {name}")
    axes[2].semilogy(x, [r.var_floor for r in first], ":", color="0.5", label="Monte Carlo floor (variance)")
    axes[2].semilogy(x, [r.mean_floor for r in first], "-.", color="0.5", label="Monte Carlo floor (mean)")
    axes[2].set(xlabel="lr h_1", ylabel="relative error over the trajectory", title="direction 1: where theory fails")
    for ax in axes:
        plot.legend(ax, fontsize=6)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
