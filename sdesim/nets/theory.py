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
the SDE is right only for :math:`\eta h_j \ll 1` (``../shared/SCIENCE.md``).
:func:`net_vs_theory` puts four numbers next to these predictions per direction:
the variance of ``u_j`` along real SGD on the net started at ``w*``, and the
variance of SGD simulated on the extracted model with :func:`sdesim.simulate`
(numba backend, many particles); then full-batch GD from initialisation with
its sharpness against ``2 / lr`` (Cohen et al. 2021).

Time is ``t = k * lr``; all runs are seeded.
"""

from __future__ import annotations

import json
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sdesim.nets.data import Dataset, load
from sdesim.nets.extract import Extraction
from sdesim.nets.mlp import MLP
from sdesim.errors import ConfigError

__all__ = ["DirectionRow", "EdgeOfStability", "NetTheoryReport", "QuadraticCheck", "format_report",
           "gd_sharpness", "load_extraction", "net_vs_theory", "plot_sweep", "real_sgd_near_minimum"]

#: Relative gap between the measured loss increase and its quadratic prediction above which we warn.
QUADRATIC_TOLERANCE = 0.2


@dataclass(frozen=True)
class DirectionRow:
    """One top Hessian eigendirection ``v_j`` of the table.

    Variances are of ``u_j = v_j^T (w - w*)``; ``*_se`` are standard errors from
    batch means (real net: one trajectory cut in time blocks; simulation:
    particles). Ratios are measured over predicted; their standard errors are the
    variance's relative standard error (the predictions are exact).
    """

    j: int
    h: float
    lr_h: float
    discrete: float
    sde: float
    real: float
    real_se: float
    simulated: float
    simulated_se: float

    @property
    def sde_factor(self) -> float:
        """Theory's discrete/SDE ratio ``2 / (2 - lr h)`` (1D; exact when ``S`` is diagonal)."""
        return 2.0 / (2.0 - self.lr_h)

    def ratios(self) -> dict:
        """``{real,simulated}_over_{discrete,sde}`` with ``_se`` companions."""
        out = {}
        for what in ("real", "simulated"):
            var, se = getattr(self, what), getattr(self, f"{what}_se")
            for kind in ("discrete", "sde"):
                pred = getattr(self, kind)
                out[f"{what}_over_{kind}"] = var / pred
                out[f"{what}_over_{kind}_se"] = se / pred
        return out


@dataclass(frozen=True)
class QuadraticCheck:
    r"""Is the real run inside the quadratic model's validity region?

    At ``n`` snapshots ``w`` of the real run (after the burn-in): ``measured =
    C(w) - C(w*)`` against its second-order Taylor value ``quadratic = g^T d +
    1/2 d^T H d`` (``d = w - w*``, exact full-batch HVP), and the part the top-``k``
    model carries, ``model = 1/2 sum_j h_j u_j^2`` (means over the snapshots).
    The model also assumes constant curvature and noise: ``curvature[j]`` is the
    mean over the snapshots of ``v_j^T H(w) v_j / h_j`` and ``noise[j]`` of
    ``v_j^T Sigma_1(w) v_j / S_jj``, for the table's directions, with standard
    errors over the snapshots (``*_se``; they are spaced far beyond the
    correlation time). Both are 1 where the model holds; a stationary variance
    moves roughly with ``noise / curvature``. On real nets ``Sigma_1`` grows with
    the spread of the per-sample Hessians times the fluctuation ``d``, so
    ``noise`` is the first to leave 1 as ``lr`` grows.
    """

    n: int
    measured: float
    quadratic: float
    model: float
    curvature: tuple[float, ...] = ()
    curvature_se: tuple[float, ...] = ()
    noise: tuple[float, ...] = ()
    noise_se: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        """``measured / quadratic``: 1 inside the quadratic region."""
        return self.measured / self.quadratic


@dataclass(frozen=True)
class EdgeOfStability:
    """Full-batch GD from initialisation: top Hessian eigenvalue against ``2 / lr``.

    ``step``, ``sharpness``, ``loss`` are ``(H,)`` arrays at the Hessian records
    (Lanczos on full-batch HVPs); ``setup`` describes the net and data.
    """

    lr: float
    steps: int
    step: np.ndarray
    sharpness: np.ndarray
    loss: np.ndarray
    setup: dict

    @property
    def threshold(self) -> float:
        """Linear stability limit ``2 / lr``."""
        return 2.0 / self.lr

    def summary(self) -> dict:
        """Initial sharpness, range over the second half, and the ratio of its mean to ``2 / lr``."""
        late = self.sharpness[len(self.sharpness) // 2:]
        return {"initial": float(self.sharpness[0]), "late_min": float(late.min()),
                "late_max": float(late.max()), "late_mean_over_threshold": float(late.mean() / self.threshold),
                "loss_initial": float(self.loss[0]), "loss_final": float(self.loss[-1])}


@dataclass(frozen=True)
class NetTheoryReport:
    """What :func:`net_vs_theory` measured. ``rows`` is the table (one per direction);
    ``settings`` the run's parameters; ``warnings`` the validity messages issued;
    ``json_path``/``figure_path`` the files written (``None`` without ``out``)."""

    model: str
    lr: float
    batch_size: int
    rows: tuple[DirectionRow, ...]
    quadratic: QuadraticCheck | None
    gd: EdgeOfStability | None
    settings: dict
    warnings: tuple[str, ...] = ()
    timings: dict = field(default_factory=dict)
    json_path: Path | None = None
    figure_path: Path | None = None

    def to_dict(self) -> dict:
        """JSON-serialisable form (what the JSON file holds)."""
        rows = [{**asdict(r), "sde_factor": r.sde_factor, **r.ratios()} for r in self.rows]
        quad = None if self.quadratic is None else {**asdict(self.quadratic), "ratio": self.quadratic.ratio}
        gd = None
        if self.gd is not None:
            gd = {"lr": self.gd.lr, "threshold": self.gd.threshold, "steps": self.gd.steps,
                  "step": self.gd.step.tolist(), "sharpness": self.gd.sharpness.tolist(),
                  "loss": self.gd.loss.tolist(), "setup": self.gd.setup, "summary": self.gd.summary()}
        return {"format": "sdesim.NetTheoryReport", "format_version": 1, "model": self.model,
                "lr": self.lr, "batch_size": self.batch_size, "settings": self.settings, "rows": rows,
                "quadratic": quad, "gd": gd, "warnings": list(self.warnings), "timings": self.timings,
                "figure": None if self.figure_path is None else str(self.figure_path)}


# --------------------------------------------------------------------------- loading

def _models_dirs():
    here = Path(__file__).resolve().parents[2] / "models"
    return [Path("models"), here]


def load_extraction(model="digits_mlp", build=True) -> tuple[Extraction, MLP, Dataset]:
    """The extracted model, its net and training set.

    Parameters
    ----------
    model : str or path
        A shipped recipe name (``"digits_mlp"``, ``"mnist1d_mlp"``: looked up in
        ``./models`` and the repository's ``models/``) or the path of an
        :meth:`Extraction.save` file (``.npz`` optional).
    build : bool
        Regenerate a shipped model from its recipe (:func:`sdesim.nets.zoo.build`,
        into ``./models``) when its files are missing.

    Returns
    -------
    (Extraction, MLP, Dataset)
        The net and data are rebuilt from the report (``net`` and the recipe's
        ``data`` in ``provenance``, or the data set's name).
    """
    from sdesim.nets import zoo

    path = None
    if str(model) in zoo.RECIPES:
        for d in _models_dirs():
            if (d / f"{model}.basis.npz").exists():
                path = d / str(model)
                break
        if path is None:
            if not build:
                raise FileNotFoundError(f"shipped model {model!r} not found in {[str(d) for d in _models_dirs()]}")
            zoo.build(str(model), "models")
            path = Path("models") / str(model)
    else:
        path = Path(model)
        if path.suffix == ".npz":
            path = path.with_suffix("")
        if not path.with_name(path.name + ".basis.npz").exists():
            raise FileNotFoundError(f"{path}.basis.npz not found: not an extraction saved by Extraction.save "
                                    f"and not one of the shipped models {sorted(zoo.RECIPES)}")
    ext = Extraction.load(path)
    rep = ext.report
    spec = rep["net"]
    net = MLP(spec["sizes"], spec["activation"], spec["loss"], spec["weight_decay"])
    data_spec = dict(rep.get("provenance", {}).get("data") or {})
    if not data_spec:
        data_spec = {"name": rep["data"]["name"].split("-")[0]}
    train_set, _ = load(**data_spec)
    if len(train_set) != rep["data"]["n"]:
        raise ConfigError(f"{path}: the model was extracted on {rep['data']['n']} samples of "
                         f"{rep['data']['name']!r}, but {data_spec} loads {len(train_set)}")
    return ext, net, train_set


# --------------------------------------------------------------------------- real SGD

def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return nullcontext()
    return threadpool_limits(1)


def real_sgd_near_minimum(net: MLP, data: Dataset, ext: Extraction, lr, batch_size, steps, seed=0,
                          snapshots=()):
    r"""Plain SGD on the real net from ``w*``, recording the model coordinates at every step.

    The update and the minibatch draws are those of :func:`sdesim.nets.train` with
    ``SGD(lr, batch_size)`` (replacement sampling, ``rng = default_rng(seed)``,
    ``rng.integers(0, n, B)`` per step), so the states are bit-identical to
    ``train(..., w0=ext.w_star, directions=ext.basis, w_ref=ext.w_star)``; this
    loop only skips ``train``'s full-batch loss at every record, which costs ten
    SGD steps.

    Returns
    -------
    u : ndarray, shape (steps + 1, k)
        ``u_k = V^T (w_k - w*)`` (NaN from a divergence on).
    snaps : dict
        ``{step: w (P,)}`` for the requested ``snapshots`` steps.
    diverged_at : int
        First step with non-finite weights, ``-1`` if none.
    """
    x, y = data.x, data.y
    rng = np.random.default_rng(seed)
    V, w_star = ext.basis, ext.w_star
    w = w_star.copy()
    u = np.full((steps + 1, V.shape[1]), np.nan)
    u[0] = 0.0
    wanted, snaps, diverged_at = {int(s) for s in snapshots}, {}, -1
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            idx = rng.integers(0, len(y), batch_size)
            w = w - lr * net.grad(w, x[idx], y[idx])
            if not np.all(np.isfinite(w)):
                diverged_at = k + 1
                break
            u[k + 1] = (w - w_star) @ V
            if k + 1 in wanted:
                snaps[k + 1] = w.copy()
    return u, snaps, diverged_at


def _batch_mean_variance(u, batches):
    """Variance per column of ``u (T, k)`` about the pooled mean, with a batch-means standard error."""
    from sdesim.analysis.stationary import stationary_statistics
    from sdesim.result import Result

    res = Result(t=np.arange(len(u), dtype=float), w=u[:, None, :], loss=np.zeros((len(u), 1)),
                 metadata={}, diverged_at=np.array([-1]))
    st = stationary_statistics(res, burn_in=0.0, batches=batches)
    return np.diag(st.covariance).copy(), np.diag(st.covariance_se).copy()


def _quadratic_check(net, data, ext, snaps, m):
    x, y = data.x, data.y
    w_star, V = ext.w_star, ext.basis
    c0, g0 = net.loss_and_grad(w_star, x, y)
    h = ext.model.hessian_eigenvalues
    S = np.diag(ext.model.S)
    measured, quadratic, model, curv, noise = [], [], [], [], []
    for i, w in enumerate(snaps.values()):
        d = w - w_star
        measured.append(net.loss(w, x, y) - c0)
        quadratic.append(g0 @ d + 0.5 * d @ net.hvp(w_star, x, y, d))
        u = d @ V
        model.append(0.5 * np.sum(h * u * u))
        J = net.sample_jacobian(w, x, y)
        curv.append([V[:, j] @ net.hvp(w, x, y, V[:, j]) / h[j] for j in range(m)])
        noise.append([np.var(J.matvec(V[:, j])) / S[j] for j in range(m)])
    n = len(snaps)

    def stats(a):
        a = np.asarray(a)
        se = a.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(a.shape[1], np.nan)
        return tuple(float(c) for c in a.mean(axis=0)), tuple(float(c) for c in se)

    return QuadraticCheck(n, float(np.mean(measured)), float(np.mean(quadratic)), float(np.mean(model)),
                          *stats(curv)[:1], stats(curv)[1], *stats(noise))


# --------------------------------------------------------------------------- edge of stability

def gd_sharpness(net: MLP, data: Dataset, lr=None, steps=1200, hessian_every=100, n_samples=300,
                 loss="squared", init_seed=0, lr_factor=0.5) -> EdgeOfStability:
    r"""Full-batch GD from ``net.init(init_seed)`` with the top Hessian eigenvalue every ``hessian_every`` steps.

    The net's architecture and activation on the first ``n_samples`` training
    samples with ``loss`` (default the squared loss, no weight decay: the setting
    of Cohen et al., where the sharpness rises to or starts above ``2 / lr``; with
    cross-entropy and weight decay ``1e-2`` the digits net's sharpness falls from
    1.2 to 0.68 under GD and never meets ``2 / lr``).

    Parameters
    ----------
    lr : float, optional
        Default: ``2 / (lr_factor * s_0)`` with ``s_0`` the sharpness at
        initialisation, so GD starts above the stability limit and must bring the
        sharpness down to ``2 / lr``.
    """
    from sdesim.analysis.lanczos import lanczos
    from sdesim.dynamics.discrete import GD
    from sdesim.nets.train import train

    sub = Dataset(data.x[:n_samples], data.y[:n_samples], data.n_classes, f"{data.name}[:{n_samples}]")
    gd_net = MLP(net.sizes, net.activation, loss, 0.0)
    w0 = gd_net.init(init_seed)
    if lr is None:
        s0 = lanczos(lambda v: gd_net.hvp(w0, sub.x, sub.y, v), gd_net.n_params, 1, tol=1e-6, seed=0)[0][0]
        lr = 2.0 / (lr_factor * s0)
    res = train(gd_net, sub, GD(lr=float(lr)), steps, w0=w0, record_every=hessian_every, stats_every=0,
                hessian_every=hessian_every)
    red = res.reduced["net"]
    setup = {"sizes": list(net.sizes), "activation": net.activation, "loss": loss, "weight_decay": 0.0,
             "data": sub.name, "n": len(sub), "init_seed": int(init_seed), "hessian_every": int(hessian_every)}
    return EdgeOfStability(float(lr), int(steps), np.asarray(red["hessian_step"]),
                           np.asarray(red["hessian_eigenvalues"][:, 0]), np.asarray(res.loss[:, 0]), setup)


# --------------------------------------------------------------------------- the comparison

def net_vs_theory(model="digits_mlp", lr=None, lr_h1=0.25, batch_size=128, steps=20_000, burn_in=0.2,
                  batches=20, directions=5, n_particles=1000, sim_steps=2000, seed=0, n_snapshots=20,
                  gd_steps=1200, gd_lr=None, gd_hessian_every=100, out=None, figure=True,
                  progress=False) -> NetTheoryReport:
    r"""Real SGD near the minimum of a net against the discrete-Lyapunov and SDE predictions.

    1. Load the extracted model (:func:`load_extraction`; a shipped model is rebuilt
       from its recipe when missing), its net and training set.
    2. Real SGD (replacement sampling) from ``w*`` for ``steps`` steps
       (:func:`real_sgd_near_minimum`); the variance of ``u_j`` over the steps
       after the burn-in, with a batch-means standard error (``batches`` blocks).
    3. The discrete and continuous Lyapunov solutions of the ``k``-dimensional
       model (:meth:`QuadraticModel.stationary_covariance`).
    4. SGD on the extracted model with :func:`sdesim.simulate` (numba backend,
       ``n_particles`` from ``u = 0``, ``sim_steps`` steps, the same burn-in
       fraction, every 10th step recorded); standard errors over particles.
    5. Validity: ``C(w) - C(w*)`` at ``n_snapshots`` states of the real run against
       its second-order Taylor value (:class:`QuadraticCheck`).
    6. Full-batch GD from initialisation with its sharpness (:func:`gd_sharpness`,
       ``gd_steps = 0`` skips it).

    Parameters
    ----------
    model : str or path
        ``"digits_mlp"``, ``"mnist1d_mlp"`` or an :meth:`Extraction.save` path.
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
    out : path, optional
        Folder for ``net_vs_theory.json`` and ``net_vs_theory.png``.

    Returns
    -------
    NetTheoryReport

    Warns
    -----
    UserWarning
        ``lr * h_1 >= 2`` (SGD unstable, no stationary state; the discrete
        prediction and the simulation are skipped); a direction relaxing slower
        than the run (``1 / (lr h_j) > steps``) or than the burn-in
        (``1 / (2 lr h_j)``, the variance's relaxation time, above a fifth of it);
        the measured loss increase differing from the quadratic prediction by more
        than 20% (the fluctuations reach where the loss is no longer quadratic).
    """
    t_start = time.perf_counter()
    timings = {}
    ext, net, train_set = load_extraction(model)
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
        warnings.warn(msg, stacklevel=3)

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
        u, snaps, diverged_at = real_sgd_near_minimum(net, train_set, ext, lr, batch_size, steps, seed=seed,
                                                      snapshots=snap_steps)
    timings["real_sgd_s"] = time.perf_counter() - t0
    if diverged_at >= 0:
        warn(f"real SGD diverged at step {diverged_at}")
        real = real_se = np.full(k, np.nan)
    else:
        real, real_se = _batch_mean_variance(u[burn + 1:], batches)
    if progress:
        print(f"real SGD: {steps} steps in {timings['real_sgd_s']:.1f} s", flush=True)

    # quadratic validity
    quad = None
    if snaps:
        t0 = time.perf_counter()
        with _blas_one_thread():
            quad = _quadratic_check(net, train_set, ext, snaps, m)
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
        from sdesim.analysis.stationary import stationary_statistics
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
            gd = gd_sharpness(net, train_set, lr=gd_lr, steps=int(gd_steps),
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
    report = NetTheoryReport(str(model), lr, batch_size, rows, quad, gd, settings, tuple(issued), timings)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        fig_path = _figure(report, out / "net_vs_theory.png") if figure else None
        json_path = out / "net_vs_theory.json"
        report = NetTheoryReport(**{**report.__dict__, "json_path": json_path, "figure_path": fig_path})
        tmp = json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_finite_or_none(report.to_dict()), indent=2))
        tmp.replace(json_path)
    return report


# --------------------------------------------------------------------------- output

def _finite_or_none(obj):
    """Strict JSON: NaN and infinities (skipped predictions, divergence) become ``null``."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def format_report(report: NetTheoryReport) -> str:
    """The terminal table: per direction, predictions and measured/predicted ratios (+- 1 s.e.)."""
    lines = [(f"{report.model}: real SGD (lr = {report.lr:.4g}, B = {report.batch_size}, "
             f"lr*h_1 = {report.settings['lr_h1']:.3g}, {report.settings['steps']} steps) and SGD simulated on the "
             f"extracted model ({report.settings['n_particles']} particles) against the stationary variances of "
             "discrete SGD (discrete Lyapunov) and of the SDE (continuous Lyapunov)"),
             (f"{'j':>3} {'h_j':>8} {'lr*h':>6} {'discrete':>10} {'SDE':>10} {'2/(2-lr h)':>10} "
             f"{'real/disc':>14} {'real/SDE':>14} {'sim/disc':>14} {'sim/SDE':>14}")]
    for r in report.rows:
        q = r.ratios()
        cells = " ".join(f"{q[key]:.3f}+-{q[key + '_se']:.3f}".rjust(14) for key in (
            "real_over_discrete", "real_over_sde", "simulated_over_discrete", "simulated_over_sde"))
        lines.append(f"{r.j:>3} {r.h:8.4g} {r.lr_h:6.3f} {r.discrete:10.3e} {r.sde:10.3e} {r.sde_factor:10.3f} "
                     + cells)
    if report.quadratic is not None:
        q = report.quadratic
        lines.append(f"loss increase along real SGD: measured {q.measured:.4g}, quadratic {q.quadratic:.4g} "
                     f"(ratio {q.ratio:.3f}), top-k model part {q.model:.4g}")
        if q.curvature:
            pm = lambda a, b: " ".join(f"{x:.3f}+-{e:.3f}" for x, e in zip(a, b))
            lines.append(f"along real SGD / at w* (j = 1..{len(q.curvature)}): curvature v^T H v "
                         f"{pm(q.curvature, q.curvature_se)}")
            lines.append(f"{'':>35}noise v^T Sigma_1 v {pm(q.noise, q.noise_se)}")
    if report.gd is not None:
        s = report.gd.summary()
        lines.append(f"full-batch GD ({report.gd.setup['loss']} loss, {report.gd.setup['data']}, lr = {report.gd.lr:.4g}, "
                     f"2/lr = {report.gd.threshold:.4g}): sharpness {s['initial']:.3g} at init, "
                     f"{s['late_min']:.3g}-{s['late_max']:.3g} over the second half "
                     f"({s['late_mean_over_threshold']:.3f} x 2/lr); loss {s['loss_initial']:.3g} -> {s['loss_final']:.3g}")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    if report.json_path is not None:
        lines.append(f"wrote {report.json_path}" + (f" and {report.figure_path}" if report.figure_path else ""))
    return "\n".join(lines)


def _figure(report: NetTheoryReport, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdesim.plot import diagrams, style

    style.use()
    ncols = 2 if report.gd is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.8), squeeze=False)
    ax = axes[0, 0]
    lr_h = np.array([r.lr_h for r in report.rows])
    for key, label, colour, marker, shift in (
            ("real_over_discrete", "real net / discrete", style.OKABE_ITO[1], "o", -1.5),
            ("real_over_sde", "real net / SDE", style.OKABE_ITO[1], "s", -0.5),
            ("simulated_over_discrete", "simulated model / discrete", style.OKABE_ITO[0], "o", 0.5),
            ("simulated_over_sde", "simulated model / SDE", style.OKABE_ITO[0], "s", 1.5)):
        vals = np.array([r.ratios()[key] for r in report.rows])
        errs = np.array([r.ratios()[key + "_se"] for r in report.rows])
        face = colour if "discrete" in key else "white"
        ax.errorbar(lr_h * (1 + 0.004 * shift), vals, yerr=errs, fmt=marker, color=colour, mfc=face,
                    capsize=2, label=label)
    grid = np.linspace(0, max(lr_h.max() * 1.1, 1e-3), 100)
    ax.plot(grid, 2 / (2 - grid), "k--", lw=1, label="theory discrete / SDE = 2 / (2 - lr h)")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set(xlabel=r"$lr\, h_j$ (top Hessian directions)", ylabel="stationary variance: measured / predicted",
           title=f"{report.model}, lr = {report.lr:.3g}, B = {report.batch_size}")
    ax.legend(fontsize=7)
    if report.gd is not None:
        gd = report.gd
        diagrams.sharpness(gd.step * gd.lr, gd.sharpness, gd.lr, ax=axes[0, 1], label="top Hessian eigenvalue")
        axes[0, 1].set_title(f"full-batch GD from init ({gd.setup['loss']} loss, {gd.setup['data']})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sweep(reports, path) -> Path:
    """Measured/predicted stationary variance against ``lr h_j`` over several runs (e.g. a sweep of
    ``lr_h1``): real net over discrete (filled) and over SDE (open), one colour per run, with the
    theory curve ``2 / (2 - lr h)`` that the SDE misses by."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdesim.plot import style

    style.use()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    top = 0.0
    for i, rep in enumerate(reports):
        colour = style.OKABE_ITO[i % len(style.OKABE_ITO)]
        lr_h = np.array([r.lr_h for r in rep.rows])
        top = max(top, lr_h.max())
        for key, face, label in (("real_over_discrete", colour, "real / discrete"),
                                 ("real_over_sde", "white", "real / SDE")):
            vals = np.array([r.ratios()[key] for r in rep.rows])
            errs = np.array([r.ratios()[key + "_se"] for r in rep.rows])
            ax.errorbar(lr_h, vals, yerr=errs, fmt="o", color=colour, mfc=face, ms=4, capsize=1.5,
                        label=f"lr h_1 = {rep.settings['lr_h1']:.3g}: {label}")
    grid = np.linspace(0, min(top * 1.02, 1.95), 200)
    ax.plot(grid, 2 / (2 - grid), "k--", lw=1, label="discrete / SDE theory 2 / (2 - lr h)")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set(xlabel=r"$lr\, h_j$", ylabel="stationary variance: real net / predicted", yscale="log",
           title=f"{reports[0].model}, B = {reports[0].batch_size}: where the predictions leave the real net")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
