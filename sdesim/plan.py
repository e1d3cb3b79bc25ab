r"""Resolve a run once: ``(loss, dynamic, options)`` -> one validated, immutable :class:`Plan`.

``simulate`` builds the plan before any backend runs; backends only read it.
Everything a backend needs is decided here, once:

- the loss (a catalog landscape gives its loss) and its kind;
- the family of the dynamic (``"discrete"``, ``"sde"``, ``"flow"``) and its drift;
- the noise (:class:`~sdesim.dynamics.noise.Noise`: a constant factor, or the
  state-dependent covariance it comes from) or, for SGD on a finite sum, the
  minibatch :class:`~sdesim.dynamics.sampling.Sampler`;
- the integrator (an instance that has checked it applies; a flow's: adaptive ``dopri5`` or fixed-step ``rk4``);
- the clock (``n_steps``, ``dt``), the learning-rate schedule, and the random-stream
  layout: at step ``k`` particle ``p`` uses the Gaussian counters ``k * n_pairs + j``
  (``j < n_pairs = ceil(n_normals / 2)``) of :mod:`sdesim.rng` under ``seed``, and the
  minibatch counters of the sampler under ``sampling_key(seed)``. Segmenting a run or
  changing the thread count never changes a number.

Bad input raises an :class:`~sdesim.errors.SdesimError` naming the problem here,
before any kernel runs; an option the loss or dynamic cannot honour raises too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sdesim import integrators
from sdesim.dynamics import GD, SGD, GradientFlow, ModifiedFlow, SGDDiffusion
from sdesim.dynamics.base import Dynamic
from sdesim.dynamics.noise import Noise, resolve_noise
from sdesim.dynamics.sampling import Sampler
from sdesim.errors import ConfigError, LossKindError, ShapeError
from sdesim.losses.base import DATA_KINDS, BaseLoss, as_loss

FAMILIES = {GD: "discrete", SGD: "discrete", SGDDiffusion: "sde", GradientFlow: "flow", ModifiedFlow: "flow"}


class BoundSDE:
    r"""The SGD diffusion of a dynamic on a loss, as integrators see it: ``drift``, ``factor``, ``additive``.

    :math:`G(w, t) = \sqrt{lr(t) / B}\, \sqrt{s}\, G_1(w)` with :math:`G_1 G_1^T = \Sigma_1`.
    """

    def __init__(self, loss, dynamic, noise: Noise | None = None):
        self.loss = loss
        self.dynamic = dynamic
        self.noise = resolve_noise(loss, dynamic) if noise is None else noise
        self.additive = self.noise.additive
        self._unit_factor = np.sqrt(dynamic.noise_scale) * self.noise.factor if self.additive else None

    @property
    def n_noise(self) -> int:
        """Number of noise columns ``r``."""
        return self.noise.n_columns(self.loss.dim)

    def drift(self, W, t):
        return self.dynamic.drift(self.loss, W, t)

    def factor(self, W, t):
        """``(dim, r)`` for additive noise, else ``(N, dim, r)``."""
        scale = np.sqrt(self.dynamic.lr_at(t) / self.dynamic.batch_size)
        if self.additive:
            return scale * self._unit_factor
        return scale * (np.sqrt(self.dynamic.noise_scale) * self.noise.factor_at(self.loss, W, t))


@dataclass(frozen=True, eq=False)
class Plan:
    """One run, resolved (module docstring). ``dt`` is ``lr`` for discrete dynamics."""

    loss: BaseLoss
    dynamic: Dynamic
    family: str
    n_particles: int
    n_steps: int
    dt: float
    seed: int
    bound: float = 1e8
    integrator: integrators.Integrator | integrators.Dopri5 | integrators.RK4 | None = None
    noise: Noise | None = None
    sampler: Sampler | None = None
    dtype: str = "float64"
    """Floating type of the states and their arithmetic: ``"float64"``, or ``"float32"`` (the GPU backend)."""

    @property
    def kind(self) -> str:
        """The loss kind: ``"symbolic"``, ``"finite_sum"``, ``"quadratic"`` or ``"network"``."""
        return self.loss.kind

    @property
    def dim(self) -> int:
        return self.loss.dim

    @property
    def label(self) -> str:
        return self.dynamic.label

    @property
    def lr(self) -> float:
        """The base learning rate (``None`` for gradient flow)."""
        return getattr(self.dynamic, "lr", None)

    @property
    def batch_size(self) -> int:
        """``B`` of SGD and the SGD diffusion (1 otherwise)."""
        return getattr(self.dynamic, "batch_size", None) or 1

    @property
    def noise_scale(self) -> float:
        """``s`` of the SGD diffusion's noise (1 otherwise)."""
        return getattr(self.dynamic, "noise_scale", 1.0)

    @property
    def modified(self) -> bool:
        """Whether the SDE's drift is the modified one."""
        return bool(getattr(self.dynamic, "modified", False))

    @property
    def momentum(self) -> float:
        return getattr(self.dynamic, "momentum", 0.0)

    @property
    def lookahead(self) -> float:
        """Where the gradient is taken, ``w + lookahead * v``: the momentum for Nesterov, else 0."""
        return self.momentum if getattr(self.dynamic, "nesterov", False) else 0.0

    @property
    def nudge(self) -> tuple[int, float]:
        """``(nudge_k, nudge_factor)`` of nudged SGD (``(0, 1.0)`` otherwise)."""
        return getattr(self.dynamic, "nudge_k", 0), float(getattr(self.dynamic, "nudge_factor", 1.0))

    @property
    def n_normals(self) -> int:
        """Standard normals per particle and step (an exact OU step spreads noise over every direction)."""
        if self.noise is None:
            return 0
        if isinstance(self.integrator, integrators.ExactOU):
            return self.dim
        return self.noise.n_columns(self.dim)

    @property
    def n_pairs(self) -> int:
        """Gaussian counters per particle and step (Box-Muller gives normals in pairs)."""
        return (self.n_normals + 1) // 2

    def times(self, steps):
        """Times ``t = k * dt`` of the given steps."""
        return np.asarray(steps, dtype=float) * self.dt

    def lr_at(self, steps) -> np.ndarray:
        """Learning rate at the given steps (the schedule), an array of their shape."""
        steps = np.asarray(steps)
        return np.asarray(self.dynamic.lr_at(self.times(steps)), dtype=float) * np.ones(steps.shape)

    def drift(self, W, t):
        """Drift of a continuous dynamic: ``-grad C`` or the modified field."""
        return self.dynamic.drift(self.loss, W, t)

    @cached_property
    def sde(self) -> BoundSDE:
        """The SDE as integrators see it (``family == "sde"``)."""
        return BoundSDE(self.loss, self.dynamic, self.noise)


def clock(dynamic, steps=None, t_end=None, dt=None) -> tuple[int, float]:
    """``(n_steps, dt)`` of a run on the clock ``t = k * lr`` (``dt = lr`` for discrete dynamics)."""
    lr = getattr(dynamic, "lr", None)
    if steps is not None and t_end is not None:
        raise ConfigError(f"give steps or t_end, not both (got steps={steps!r}, t_end={t_end!r})")
    for name, value in (("t_end", t_end), ("dt", dt)):
        if value is not None and not (np.isscalar(value) and np.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    if dynamic.continuous:
        if dt is None:
            if lr is None and t_end is None:
                raise ConfigError(f"{dynamic.label}: give dt (it has no learning rate to default to)")
            dt = lr / 10 if lr is not None else t_end / 1000
        if t_end is None:
            if steps is None:
                raise ConfigError("give t_end (or steps) for a continuous dynamic")
            if check_count("steps", steps) == 0:
                return 0, float(dt)
            t_end = steps * dt
        n = max(1, int(round(t_end / dt)))
        return n, t_end / n
    if dt is not None:
        raise ConfigError(f"{dynamic.label} is discrete: its step is lr = {lr}; do not pass dt")
    if steps is None:
        if t_end is None:
            raise ConfigError("give steps (or t_end) for a discrete dynamic")
        steps = int(round(t_end / lr))
    return check_count("steps", steps), float(lr)


def check_count(name, value, minimum=0) -> int:
    """``value`` as an integer ``>= minimum`` (bools and non-integral numbers refused)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        count = int(value)
    elif isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        count = int(value)
    else:
        count = None
    if count is None or count < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return count


def initial_states(w0, n_particles, dim, names) -> np.ndarray:
    """``(n_particles, dim)`` initial states from ``w0`` of shape ``(dim,)`` or ``(n_particles, dim)``."""
    try:
        W0 = np.asarray(w0, dtype=float)
    except (TypeError, ValueError):
        raise ShapeError(f"w0 must be an array of numbers, got {w0!r}") from None
    if W0.ndim == 1 and W0.shape[0] == dim:
        W0 = np.broadcast_to(W0, (n_particles, dim))
    if W0.shape != (n_particles, dim):
        raise ShapeError(f"w0 must have shape ({dim},) or ({n_particles}, {dim}) "
                         f"(variables {', '.join(names)}), got {np.shape(w0)}")
    if not np.isfinite(W0).all():
        raise ShapeError("w0 has non-finite entries")
    return np.array(W0)


def resolve(loss, dynamic, n_particles=1, steps=None, t_end=None, dt=None, seed=0, integrator=None,
            bound=1e8, dtype="float64") -> Plan:
    """The :class:`Plan` of a run (arguments as :func:`sdesim.simulate`); raises on bad input."""
    loss = as_loss(loss)
    family = FAMILIES.get(type(dynamic))
    if family is None:
        raise ConfigError(f"expected a dynamic ({', '.join(c.__name__ for c in FAMILIES)}), "
                          f"got {type(dynamic).__name__}")
    n_particles = check_count("n_particles", n_particles, minimum=1)
    seed = check_count("seed", seed)
    if seed >= 2**64:
        raise ConfigError(f"seed must be below 2**64, got {seed}")
    if not (np.isscalar(bound) and bound > 0):
        raise ConfigError(f"bound must be a positive number, got {bound!r}")
    dtype = _float_type(dtype)
    n_steps, dt = clock(dynamic, steps, t_end, dt)
    noise = sampler = None
    if family == "discrete":
        if integrator is not None:
            raise ConfigError(f"{dynamic.label} is discrete: integrator={integrator!r} does not apply")
        if isinstance(dynamic, SGD):
            noise, sampler = _sgd_noise(loss, dynamic, seed)
    elif family == "sde":
        noise = resolve_noise(loss, dynamic)
        integrator = integrators.get("euler_maruyama" if integrator is None else integrator)
        integrator.check(loss.kind, noise, loss.dim)
    else:
        flow_integrator = integrators.get_flow(integrator)
        if isinstance(dynamic, ModifiedFlow) and dynamic.kind == "sgd" and loss.kind not in DATA_KINDS:
            raise LossKindError("ModifiedFlow(kind='sgd') needs a FiniteSumLoss or NetworkLoss (its minibatches)")
        if isinstance(dynamic, ModifiedFlow) and dynamic.kind == "gd" and loss.kind == "network":
            loss.modified_field(dynamic.lr, dynamic.order)      # raises for an order the network has not
        integrator = flow_integrator
    return Plan(loss, dynamic, family, n_particles, n_steps, dt, seed, float(bound), integrator, noise, sampler,
                dtype)


DTYPES = ("float64", "float32")


def _float_type(dtype) -> str:
    """``"float64"`` or ``"float32"`` from a name or NumPy type; anything else raises."""
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):
        name = None
    if name not in DTYPES:
        raise ConfigError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return name


def _sgd_noise(loss, dynamic, seed):
    """``(noise, sampler)`` of SGD: real minibatches on a finite sum, Gaussian noise on the other losses."""
    if dynamic.nudge_k > loss.dim:
        raise ConfigError(f"nudge_k={dynamic.nudge_k} exceeds the dimension {loss.dim}")
    if loss.kind in DATA_KINDS:
        if dynamic.noise_covariance is not None or dynamic.noise_factor is not None:
            raise ConfigError(f"a {type(loss).__name__} draws real minibatches: drop noise_covariance/noise_factor")
        return None, Sampler(dynamic.sampling, loss.n_samples, dynamic.batch_size, seed)
    if dynamic.sampling != "replacement":
        raise ConfigError(f"sampling={dynamic.sampling!r} needs data to sample without replacement (a "
                          f"FiniteSumLoss); on a {type(loss).__name__} SGD's noise is Gaussian with "
                          "covariance Sigma_1 / B: use sampling='replacement'")
    return resolve_noise(loss, dynamic), None
