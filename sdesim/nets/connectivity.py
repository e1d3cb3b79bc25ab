r"""Mode connectivity: the loss between two trained networks, along the straight line and along a
low-loss curve (Garipov et al. 2018; Draxler et al. 2018).

Two solutions :math:`a, b` of the same net (trained from different seeds). The straight line
:math:`w(t) = (1 - t) a + t b` usually crosses a barrier; a quadratic Bezier curve

.. math::  \phi_\theta(t) = (1 - t)^2 a + 2 t (1 - t)\, \theta + t^2 b, \qquad t \in [0, 1],

trained as Garipov et al. do (SGD on the bend :math:`\theta` of
:math:`E_{t \sim U[0,1]} C(\phi_\theta(t))`: at every step one ``t`` and one minibatch,
:math:`\theta \leftarrow \theta - lr\, 2 t (1 - t)\, \nabla C_B(\phi_\theta(t))`), from
:math:`\theta = (a + b)/2` (the line itself), usually finds one with almost none. The barrier of a
path is :math:`\max_t C(w(t)) - \max(C(a), C(b))`, on the training and on the test loss. The
alternative path is Draxler et al.'s minimum-energy path: the nudged elastic band of
:mod:`sdesim.analysis.paths` on the full-batch loss in weight space.

:func:`connect` works on any :class:`~sdesim.nets.objective.Objective` (so on PyTorch models
through :class:`~sdesim.nets.torch_adapter.TorchObjective`); :func:`mode_connect` trains the two
tanh MLPs on a shipped data set first and writes ``mode_connect.json`` and ``mode_connect.png``
(``sdesim mode-connect``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdesim.analysis.paths import nudged_elastic_band
from sdesim.dynamics.discrete import SGD
from sdesim.errors import ConfigError, NonFiniteError, ShapeError
from sdesim.nets.data import load
from sdesim.nets.mlp import MLP
from sdesim.nets.objective import MLPObjective, Objective
from sdesim.nets.report import _finite_or_none
from sdesim.nets.theory import _blas_one_thread
from sdesim.nets.train import train

__all__ = ["ModeConnectivity", "bezier", "connect", "fit_bezier", "format_table", "mode_connect",
           "path_barrier", "plot_connectivity", "polyline"]


def bezier(a, theta, b, t) -> np.ndarray:
    r"""Points :math:`\phi_\theta(t) = (1 - t)^2 a + 2 t (1 - t) \theta + t^2 b`, shape ``(len(t), P)``."""
    t = np.asarray(t, dtype=float)[:, None]
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * theta + t ** 2 * b


def polyline(points, t) -> np.ndarray:
    """Points at ``t`` on the piecewise-linear path through ``points (m, P)``, point ``i`` at ``t = i / (m - 1)``."""
    points = np.asarray(points, dtype=float)
    s = np.asarray(t, dtype=float) * (len(points) - 1)
    i = np.minimum(np.floor(s).astype(int), len(points) - 2)
    frac = (s - i)[:, None]
    return (1 - frac) * points[i] + frac * points[i + 1]


def path_barrier(values) -> float:
    r"""Barrier of a path sampled from end to end: :math:`\max_t C - \max(C(0), C(1))` (``>= 0``)."""
    values = np.asarray(values, dtype=float)
    return float(values.max() - max(values[0], values[-1]))


def _checked(objective, a, b, test):
    if not isinstance(objective, Objective):
        raise ConfigError(f"objective must be an sdesim.nets.objective.Objective, got {type(objective).__name__}")
    P = objective.n_params
    ends = []
    for name, w in (("a", a), ("b", b)):
        w = np.asarray(w, dtype=float)
        if w.shape != (P,):
            raise ShapeError(f"end point {name} has shape {w.shape}; the objective has {P} parameters")
        if not np.all(np.isfinite(w)):
            raise NonFiniteError(f"end point {name} holds NaN or infinite weights")
        ends.append(w)
    if np.array_equal(*ends):
        raise ConfigError("the end points a and b coincide: nothing to connect")
    if test is not None and (not isinstance(test, Objective) or test.n_params != P):
        raise ConfigError(f"test must be an Objective on the same {P} parameters (the net on its test set)")
    return ends


def fit_bezier(objective: Objective, a, b, steps=4000, lr=0.1, batch_size=32, seed=0, theta0=None) -> np.ndarray:
    r"""Train the bend :math:`\theta` of the Bezier curve from ``a`` to ``b`` (module docstring).

    Each step draws ``t ~ U[0, 1]`` and ``batch_size`` samples with replacement from
    ``numpy.random.default_rng(seed)`` and takes
    :math:`\theta \leftarrow \theta - lr\, 2 t (1 - t)\, \nabla C_B(\phi_\theta(t))`.

    Returns
    -------
    ndarray, shape (P,)
        :math:`\theta` (``theta0``, default ``(a + b) / 2``, after ``steps`` steps).
    """
    a, b = _checked(objective, a, b, None)
    steps, batch_size = int(steps), int(batch_size)
    if steps < 0 or not lr > 0 or not 1 <= batch_size <= objective.n_samples:
        raise ConfigError(f"need steps >= 0, lr > 0 and 1 <= batch_size <= {objective.n_samples}; "
                          f"got {steps}, {lr}, {batch_size}")
    theta = 0.5 * (a + b) if theta0 is None else np.array(theta0, dtype=float)
    if theta.shape != a.shape:
        raise ShapeError(f"theta0 has shape {theta.shape}, expected {a.shape}")
    rng = np.random.default_rng(seed)
    for step in range(steps):
        t = rng.uniform()
        idx = rng.integers(0, objective.n_samples, batch_size)
        w = (1 - t) ** 2 * a + 2 * t * (1 - t) * theta + t ** 2 * b
        with np.errstate(over="ignore", invalid="ignore"):
            theta -= lr * 2 * t * (1 - t) * objective.grad(w, idx)
        if not np.all(np.isfinite(theta)):
            raise NonFiniteError(f"the Bezier curve diverged at step {step + 1} (lr = {lr} too large?)")
    return theta


@dataclass(frozen=True)
class ModeConnectivity:
    """Losses along the line and the curve between ``w_a`` and ``w_b``.

    Attributes
    ----------
    t : (n,) array
        Path coordinate (``t = 0``: ``w_a``, ``t = 1``: ``w_b``).
    line_train, line_test, curve_train, curve_test : (n,) arrays
        Training and test loss (NaN without a test objective) along each path.
    w_a, w_b : (P,) arrays
        End points.
    control : (m, P) array
        The curve's control points: ``(w_a, theta, w_b)`` for the Bezier curve, the band's images
        for the elastic band (``settings["method"]``).
    settings, seconds : dict
    """

    t: np.ndarray
    line_train: np.ndarray
    line_test: np.ndarray
    curve_train: np.ndarray
    curve_test: np.ndarray
    w_a: np.ndarray
    w_b: np.ndarray
    control: np.ndarray
    settings: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def barriers(self) -> dict:
        """``{line,curve}_{train,test}``: :func:`path_barrier` of each series (NaN without test losses)."""
        return {f"{p}_{s}": path_barrier(getattr(self, f"{p}_{s}")) if np.all(np.isfinite(getattr(self, f"{p}_{s}")))
                else float("nan") for p in ("line", "curve") for s in ("train", "test")}

    def to_dict(self) -> dict:
        """JSON-ready (strict: NaN becomes ``None``): settings, barriers, loss series, timings; no weights.

        ``control_distance``: largest distance of a control point from its place on the line."""
        series = {f"{p}_{s}": getattr(self, f"{p}_{s}").tolist() for p in ("line", "curve") for s in ("train", "test")}
        on_line = polyline([self.w_a, self.w_b], np.linspace(0, 1, len(self.control)))
        return _finite_or_none({
            "settings": self.settings, "barriers": self.barriers(), "t": self.t.tolist(), **series,
            "control_distance": float(np.linalg.norm(self.control - on_line, axis=1).max()),
            "end_distance": float(np.linalg.norm(self.w_b - self.w_a)), "seconds": self.seconds})


def connect(objective: Objective, a, b, test: Objective | None = None, n_points=41, steps=4000, lr=0.1,
            batch_size=32, seed=0, method="bezier", n_images=11) -> ModeConnectivity:
    """Loss along the line from ``a`` to ``b`` and along a low-loss curve between them.

    Parameters
    ----------
    objective : Objective
        The net on its training set (the curve is trained on it).
    a, b : array_like, shape (P,)
        The two solutions.
    test : Objective, optional
        The same net on held-out data: test losses along both paths.
    n_points : int
        Values of ``t``, evenly spaced on ``[0, 1]`` (``>= 3``).
    method : {"bezier", "neb"}
        ``"bezier"``: the curve of :func:`fit_bezier` (``steps``, ``lr``, ``batch_size``, ``seed``);
        ``"neb"``: the climbing-image nudged elastic band of :mod:`sdesim.analysis.paths` on the
        full-batch training loss, ``n_images`` images relaxed for at most ``steps`` FIRE steps, the
        path the polyline through them (Draxler et al. 2018).

    BLAS runs on one thread (threadpoolctl).
    """
    a, b = _checked(objective, a, b, test)
    if int(n_points) < 3:
        raise ConfigError(f"n_points must be >= 3, got {n_points}")
    if method not in ("bezier", "neb"):
        raise ConfigError(f"method must be 'bezier' or 'neb', got {method!r}")
    t = np.linspace(0.0, 1.0, int(n_points))
    with _blas_one_thread():                                # much faster on a small net's matrices
        return _connect(objective, a, b, test, t, steps, lr, batch_size, seed, method, n_images)


def _connect(objective, a, b, test, t, steps, lr, batch_size, seed, method, n_images):
    start = time.perf_counter()
    extra = {}
    if method == "bezier":
        theta = fit_bezier(objective, a, b, steps, lr, batch_size, seed)
        control, curve = np.array([a, theta, b]), bezier(a, theta, b, t)
    else:
        band = nudged_elastic_band(objective, a, b, n_images=n_images, max_steps=steps,  # from the line, exact ends
                                   initial=polyline([a, b], np.linspace(0, 1, int(n_images))))
        control, curve = band.images, polyline(band.images, t)
        extra = {"n_images": int(n_images), "neb_converged": band.converged, "neb_iterations": band.iterations,
                 "neb_max_force": band.max_force}
    fitted = time.perf_counter()
    paths = {"line": (1 - t)[:, None] * a + t[:, None] * b, "curve": curve}
    paths["line"][-1] = b                                   # the end points are the nets, bit for bit
    losses = {}
    for name, W in paths.items():
        losses[f"{name}_train"] = np.array([objective.loss(w) for w in W])
        losses[f"{name}_test"] = (np.array([test.loss(w) for w in W]) if test is not None
                                  else np.full(len(t), np.nan))
    settings = {"method": method, **extra, "n_points": len(t), "steps": int(steps), "lr": float(lr),
                "batch_size": int(batch_size), "seed": int(seed), "n_params": int(objective.n_params),
                "n_train": int(objective.n_samples),
                "n_test": None if test is None else int(test.n_samples)}
    seconds = {"curve": fitted - start, "evaluation": time.perf_counter() - fitted}
    return ModeConnectivity(t, **losses, w_a=a, w_b=b, control=control, settings=settings, seconds=seconds)


def mode_connect(data="digits", sizes=(64, 32, 10), activation="tanh", weight_decay=1e-3, lr=0.1, batch_size=32,
                 train_steps=5000, curve_steps=None, seeds=(0, 1), n_points=41, method="bezier", quick=False,
                 out=None) -> ModeConnectivity:
    """Train two MLPs on ``data`` (``sd.nets.train``, SGD from ``init_seed = seed`` with minibatch
    seed ``seed``, one per entry of ``seeds``), then :func:`connect` them with ``method`` (Bezier
    curve SGD with the same ``lr`` and ``batch_size``, seed ``seeds[0]``; BLAS on one thread).
    ``curve_steps``: default 10,000 (Bezier) or 300 FIRE steps (NEB). ``quick``: 2000 training
    steps, 2000 curve steps or 100 FIRE steps. ``out``: write ``out/mode_connect.json`` and
    ``out/mode_connect.png``."""
    if len(seeds) != 2 or seeds[0] == seeds[1]:
        raise ConfigError(f"seeds must be two different seeds, got {seeds}")
    if curve_steps is None:
        curve_steps = {"bezier": 2000 if quick else 10_000, "neb": 100 if quick else 300}.get(method, 0)
    if quick:
        train_steps = 2000
    train_set, test_set = load(data)
    net = MLP(sizes, activation, "cross_entropy", weight_decay)
    start = time.perf_counter()
    with _blas_one_thread():
        ends = [train(net, train_set, SGD(lr, batch_size), train_steps, record_every=max(int(train_steps), 1),
                      stats_every=0, seed=s, init_seed=s).w[-1, 0] for s in seeds]
        trained = time.perf_counter() - start
        res = connect(MLPObjective(net, train_set.x, train_set.y), *ends, MLPObjective(net, test_set.x, test_set.y),
                      n_points, curve_steps, lr, batch_size, seeds[0], method)
    res.settings.update(data=data, sizes=list(net.sizes), activation=activation, loss="cross_entropy",
                        weight_decay=float(weight_decay), train_steps=int(train_steps), seeds=[int(s) for s in seeds],
                        test_accuracy=[net.accuracy(w, test_set.x, test_set.y) for w in ends])
    res.seconds["training"] = trained
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "mode_connect.json").write_text(json.dumps(res.to_dict(), indent=2, allow_nan=False))
        plot_connectivity(res, out / "mode_connect.png")
    return res


def format_table(res: ModeConnectivity) -> str:
    """Terminal table: end-point and path losses and the barriers, train and test."""
    b, s = res.barriers(), res.settings
    mid = len(res.t) // 2
    lines = [f"mode connectivity: {s.get('sizes', s['n_params'])} on {s.get('data', 'the objective')}; "
             + (f"curve: Bezier, trained {s['steps']} SGD steps (lr = {s['lr']:g}, B = {s['batch_size']})"
              if s["method"] == "bezier" else f"curve: elastic band of {s['n_images']} images, "
              f"{s['neb_iterations']} FIRE steps (max force {s['neb_max_force']:.2g})"),
             "| path | set | C(a) | C(b) | C(t = 0.5) | max_t C | barrier |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in ("line", "curve"):
        for which in ("train", "test"):
            v = getattr(res, f"{p}_{which}")
            lines.append(f"| {p} | {which} | {v[0]:.4f} | {v[-1]:.4f} | {v[mid]:.4f} | {v.max():.4f} | "
                         f"{b[f'{p}_{which}']:.4f} |")
    return "\n".join(lines)


def plot_connectivity(res: ModeConnectivity, path=None, ax=None):
    """Loss against the path coordinate ``t``: line (dashed) and curve (solid), train and test."""
    import matplotlib.pyplot as plt

    from sdesim.plot import style

    style.use()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 3.8), layout="constrained")
    b = res.barriers()
    for i, which in enumerate(("train", "test")):
        for p, ls in (("line", "--"), ("curve", "-")):
            v = getattr(res, f"{p}_{which}")
            if np.all(np.isfinite(v)):
                ax.plot(res.t, v, ls, color=f"C{i}", lw=1.4, label=f"{p}, {which} (barrier {b[f'{p}_{which}']:.3f})")
    curve = "Bezier curve" if res.settings.get("method") == "bezier" else "elastic band"
    ax.set(xlabel="path coordinate t (0: net a, 1: net b)", ylabel="loss",
           title=f"loss between two trained nets: line vs {curve}")
    style.legend(ax, fontsize=7)
    if path is not None:
        (fig or ax.figure).savefig(path, dpi=130)
        if fig is not None:
            plt.close(fig)
    return ax
