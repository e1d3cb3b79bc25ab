r"""Theory against a real network: stationary SGD variances near a minimum and the edge of stability.

Near a minimum ``w*`` of a real net, SGD with learning rate ``lr`` and batch size ``B``
(sampling with replacement) sees, in the coordinates ``u = V^T (w - w*)`` of the
top Hessian eigenvectors ``V``, the extracted quadratic model
:math:`C(u) = \tfrac12 u^\top \mathrm{diag}(h)\, u`, noise covariance
:math:`S = V^\top \Sigma_1(w^*) V` (:mod:`sdesim.nets.extract`). Its stationary
covariance is

.. math::

    \text{discrete SGD:}\quad P = A P A^\top + \frac{\eta^2}{B} S,\quad A = I - \eta H, \qquad
    \text{SDE:}\quad H P + P H = \frac{\eta}{B} S,

so along ``v_j`` (``S`` diagonal) the discrete/SDE ratio is :math:`2 / (2 - \eta h_j)`:
the SDE is right only for :math:`\eta h_j \ll 1`.
:func:`net_vs_theory` puts next to these predictions, per direction, the variance of
``u_j`` along real SGD on the net started at ``w*`` (:mod:`sdesim.nets.near_minimum`) and
the variance of SGD simulated on the extracted model with :func:`sdesim.simulate`
(numba backend, many particles); then full-batch GD from initialisation with its
sharpness against ``2 / lr`` (:mod:`sdesim.nets.edge_of_stability`, Cohen et al. 2021).
The report's types, JSON and table are in :mod:`sdesim.nets.report`, its figures in
:mod:`sdesim.nets.figures`, the loader in :mod:`sdesim.nets.loading`.

Time is ``t = k * lr``; all runs are seeded.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from sdesim.analysis.stationary import stationary_statistics
from sdesim.errors import ConfigError, ShapeError, ValidityWarning
from sdesim.nets.data import Dataset
from sdesim.nets.edge_of_stability import gd_sharpness
from sdesim.nets.extract import Extraction
from sdesim.nets.figures import plot_report, plot_sweep
from sdesim.nets.loading import extraction_path, load_extraction, load_objective
from sdesim.nets.near_minimum import (
    quadratic_check,
    real_sgd_near_minimum,
    sgd_near_minimum,
    stationary_variance,
)
from sdesim.nets.objective import MLPObjective, Objective
from sdesim.nets.report import (
    DirectionRow,
    EdgeOfStability,
    NetTheoryReport,
    QuadraticCheck,
    format_report,
    write_json,
)

__all__ = ["DirectionRow", "EdgeOfStability", "NetTheoryReport", "QuadraticCheck", "format_report",
           "gd_sharpness", "load_extraction", "load_objective", "net_vs_theory", "plot_sweep",
           "real_sgd_near_minimum", "sgd_near_minimum"]

#: Relative gap between the measured loss increase and its quadratic prediction above which we warn.
QUADRATIC_TOLERANCE = 0.2


def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return nullcontext()
    return threadpool_limits(1)


def net_vs_theory(model="digits_mlp", lr=None, lr_h1=0.25, batch_size=128, steps=20_000, burn_in=0.2,
                  batches=20, directions=5, n_particles=1000, sim_steps=2000, seed=0, n_snapshots=20,
                  gd_steps=None, gd_lr=None, gd_hessian_every=100, out=None, figure=True,
                  progress=False, objective=None) -> NetTheoryReport:
    r"""Real SGD near the minimum of a net against the discrete-Lyapunov and SDE predictions.

    1. Load the extracted model and its network on its training set
       (:func:`~sdesim.nets.loading.load_objective`; a shipped model is rebuilt from
       its recipe when missing), or take the ``objective`` given.
    2. Real SGD (replacement sampling) from ``w*`` for ``steps`` steps
       (:func:`~sdesim.nets.near_minimum.sgd_near_minimum`); the variance of ``u_j`` over the steps
       after the burn-in, with a batch-means standard error (``batches`` blocks).
    3. The discrete and continuous Lyapunov solutions of the ``k``-dimensional
       model (:meth:`QuadraticModel.stationary_covariance`).
    4. SGD on the extracted model with :func:`sdesim.simulate` (numba backend,
       ``n_particles`` from ``u = 0``, ``sim_steps`` steps, the same burn-in
       fraction, every 10th step recorded); standard errors over particles.
    5. Validity: ``C(w) - C(w*)`` at ``n_snapshots`` states of the real run against
       its second-order Taylor value (:class:`QuadraticCheck`).
    6. Full-batch GD from initialisation with its sharpness (:func:`gd_sharpness`;
       the package's MLP only, ``gd_steps = 0`` skips it).

    Parameters
    ----------
    model : str, path or Extraction
        ``"digits_mlp"``, ``"mnist1d_mlp"``, an :meth:`Extraction.save` path or an
        :class:`~sdesim.nets.extract.Extraction`.
    objective : Objective, optional
        The network on its training data (:class:`~sdesim.nets.objective.Objective`,
        e.g. ``TorchObjective(module, x, y, loss_fn)``) in the layout of the
        extraction's ``w*``; by default rebuilt from the extraction's report
        (:func:`~sdesim.nets.loading.load_objective`).
    lr : float, optional
        Learning rate; default ``lr_h1 / h_1``.
    lr_h1 : float
        ``lr * h_1`` when ``lr`` is not given (0.25: the low-noise setting).
    batch_size : int
        ``B`` for the real run and the model (with replacement: ``Cov[g_B] = S / B``).
    steps : int
        Real SGD steps; the first ``burn_in`` fraction is discarded.
    directions : int
        Rows of the table (top Hessian directions; at most ``k``).
    gd_steps : int, optional
        Full-batch GD steps from initialisation; default 1200 on the package's MLP,
        none on another network (it has no initialisation here: a positive value
        raises ``ConfigError``).
    out : path, optional
        Folder for ``net_vs_theory.json`` and ``net_vs_theory.png``.

    Returns
    -------
    NetTheoryReport

    Warns
    -----
    ValidityWarning
        ``lr * h_1 >= 2`` (SGD unstable, no stationary state; the discrete
        prediction and the simulation are skipped); a direction relaxing slower
        than the run (``1 / (lr h_j) > steps``) or than the burn-in
        (``1 / (2 lr h_j)``, the variance's relaxation time, above a fifth of it);
        the measured loss increase differing from the quadratic prediction by more
        than 20% (the fluctuations reach where the loss is no longer quadratic).
    """
    t_start = time.perf_counter()
    timings = {}
    if objective is None:
        ext, objective, train_set = load_objective(model)
    else:
        ext = model if isinstance(model, Extraction) else Extraction.load(extraction_path(model))
        train_set = None
        if isinstance(objective, MLPObjective):
            train_set = Dataset(objective.x, objective.y, objective.net.sizes[-1],
                                (ext.report.get("data") or {}).get("name", "data"))
    if not isinstance(objective, Objective):
        raise ConfigError(f"objective must be an sdesim.nets.objective.Objective, got {type(objective).__name__}")
    if ext.w_star.shape != (objective.n_params,):
        raise ShapeError(f"the extraction has {ext.w_star.size} weights but the network has {objective.n_params}")
    if gd_steps is None:
        gd_steps = 1200 if train_set is not None else 0
    elif gd_steps and train_set is None:
        raise ConfigError("gd_steps: GD from initialisation needs the package's MLP; this network has no "
                          "initialisation here (give gd_steps=0)")
    qm = ext.model
    h = qm.hessian_eigenvalues
    k = qm.dim
    m = int(min(directions, k))
    lr = float(lr_h1 / h[0]) if lr is None else float(lr)
    steps, batch_size = int(steps), int(batch_size)
    burn = int(burn_in * steps)
    timings["load_s"] = time.perf_counter() - t_start
    issued = []

    def warn(msg):
        issued.append(msg)
        warnings.warn(msg, ValidityWarning, stacklevel=3)

    stable = lr * h[0] < 2
    if not stable:
        warn(f"lr * h_1 = {lr * h[0]:.3g} >= 2: SGD is linearly unstable at this minimum; "
             "no stationary state (discrete prediction and simulation skipped)")
    if h[m - 1] <= 0:
        warn(f"Hessian eigenvalues <= 0 among the top {m}: no stationary state along them")
    for j in range(m):
        if h[j] > 0 and 1.0 / (lr * h[j]) > steps:
            warn(f"direction {j + 1}: relaxation time 1/(lr h) = {1 / (lr * h[j]):.3g} steps exceeds the run "
                 f"({steps} steps): its variance has not reached stationarity")
        elif h[j] > 0 and 1.0 / (2 * lr * h[j]) > burn / 5:
            warn(f"direction {j + 1}: variance relaxation time 1/(2 lr h) = {1 / (2 * lr * h[j]):.3g} steps "
                 f"is not short against the burn-in ({burn} steps)")

    # theory
    with np.errstate(all="ignore"):
        sde = np.diag(qm.stationary_covariance(lr, batch_size, kind="sde")) if h[-1] > 0 else np.full(k, np.nan)
        disc = np.diag(qm.stationary_covariance(lr, batch_size, kind="discrete")) if stable and h[-1] > 0 \
            else np.full(k, np.nan)

    # real net
    t0 = time.perf_counter()
    snap_steps = np.linspace(burn, steps, n_snapshots + 1)[1:].astype(int) if n_snapshots else ()
    with _blas_one_thread():
        u, snaps, diverged_at = sgd_near_minimum(objective, ext, lr, batch_size, steps, seed=seed,
                                                 snapshots=snap_steps)
    timings["real_sgd_s"] = time.perf_counter() - t0
    if diverged_at >= 0:
        warn(f"real SGD diverged at step {diverged_at}")
        real = real_se = np.full(k, np.nan)
    else:
        real, real_se = stationary_variance(u[burn + 1:], batches)
    if progress:
        print(f"real SGD: {steps} steps in {timings['real_sgd_s']:.1f} s", flush=True)

    # quadratic validity
    quad = None
    if snaps:
        t0 = time.perf_counter()
        with _blas_one_thread():
            quad = quadratic_check(objective, ext, snaps, m)
        timings["quadratic_check_s"] = time.perf_counter() - t0
        if abs(quad.ratio - 1) > QUADRATIC_TOLERANCE:
            warn(f"loss increase over the minimum along real SGD is {quad.measured:.3g}, its quadratic "
                 f"prediction {quad.quadratic:.3g} (ratio {quad.ratio:.2f}): the fluctuations reach where the "
                 "loss is no longer quadratic; the Lyapunov predictions do not apply")
        ratio = np.array(quad.noise) / np.array(quad.curvature)
        rel_se = np.hypot(np.array(quad.noise_se) / quad.noise, np.array(quad.curvature_se) / quad.curvature)
        off = (np.abs(ratio - 1) > QUADRATIC_TOLERANCE) & (np.abs(ratio - 1) > 3 * rel_se * ratio)
        if off.any():
            j = int(np.argmax(np.where(off, np.abs(np.log(ratio)), -1)))
            warn(f"direction {j + 1}: along real SGD the noise v^T Sigma_1 v / S_jj = {quad.noise[j]:.3f} "
                 f"+- {quad.noise_se[j]:.3f} and the curvature v^T H v / h_j = {quad.curvature[j]:.3f} differ from "
                 "the model's constants at w*: state-dependent noise or curvature, beyond the quadratic model")

    # the extracted model, simulated
    sim = sim_se = np.full(k, np.nan)
    if stable and n_particles > 0 and sim_steps > 0:
        import sdesim as sd
        t0 = time.perf_counter()
        res = sd.simulate(qm, sd.SGD(lr=lr, batch_size=batch_size), np.zeros(k), n_particles=n_particles,
                          steps=int(sim_steps), record_every=10, backend="numba", seed=seed,
                          progress=False, on_divergence="ignore")
        st = stationary_statistics(res, burn_in=burn_in, batches=1)
        sim, sim_se = np.diag(st.covariance).copy(), np.diag(st.covariance_se).copy()
        timings["simulate_s"] = time.perf_counter() - t0
        if progress:
            print(f"simulated model: {n_particles} x {sim_steps} steps in {timings['simulate_s']:.1f} s", flush=True)

    rows = tuple(DirectionRow(j + 1, float(h[j]), float(lr * h[j]), float(disc[j]), float(sde[j]),
                              float(real[j]), float(real_se[j]), float(sim[j]), float(sim_se[j]))
                 for j in range(m))

    # edge of stability
    gd = None
    if gd_steps:
        t0 = time.perf_counter()
        with _blas_one_thread():
            gd = gd_sharpness(objective.net, train_set, lr=gd_lr, steps=int(gd_steps),
                              hessian_every=int(min(gd_hessian_every, gd_steps)))
        timings["gd_s"] = time.perf_counter() - t0
        if progress:
            print(f"GD: {gd_steps} steps in {timings['gd_s']:.1f} s", flush=True)
    timings["total_s"] = time.perf_counter() - t_start

    settings = {"lr_h1": float(lr * h[0]), "steps": steps, "burn_in": float(burn_in), "batches": int(batches),
                "directions": m, "k": int(k), "n_particles": int(n_particles), "sim_steps": int(sim_steps),
                "seed": int(seed), "n_snapshots": int(n_snapshots), "sampling": "replacement",
                "diverged_at": int(diverged_at), "extraction": {
                    key: ext.report.get(key) for key in ("grad_norm", "loss", "noise_fraction", "noise_trace",
                                                         "train_accuracy", "test_accuracy", "net", "data")}}
    name = str(model) if not isinstance(model, Extraction) else (ext.report.get("net") or {}).get(
        "torch_module", "extraction")
    report = NetTheoryReport(name, lr, batch_size, rows, quad, gd, settings, tuple(issued), timings)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report = dataclasses.replace(report, json_path=out / "net_vs_theory.json",
                                     figure_path=plot_report(report, out / "net_vs_theory.png") if figure else None)
        write_json(report, report.json_path)
    return report
