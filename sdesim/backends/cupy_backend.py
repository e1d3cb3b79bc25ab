"""The GPU backend ``"cupy"``: ensemble kernels on an NVIDIA GPU, compiled by Numba CUDA.

The ensemble lives on the device (CuPy arrays; NumPy arrays under Numba's CUDA
simulator, ``NUMBA_ENABLE_CUDASIM=1``, which is how it is tested without a GPU).
One thread per particle runs the time loop of a segment with its state in
registers (:mod:`sdesim.backends.cuda_source`), drawing the counter-based
streams of :mod:`sdesim.rng` (:mod:`sdesim.backends.cuda_rng`), so a GPU run
reproduces the CPU backends for any launch configuration.

Compiled: GD, SGD with Gaussian noise, momentum, Nesterov, schedules and the SGD
diffusion (Euler-Maruyama, Heun, weak order 2; isotropic or constant-matrix
noise; the modified drift) on symbolic losses; every affine step on quadratic
models (dense, and in the eigenbasis of a dense Hessian; exact OU); SGD
(with replacement, shuffled epochs, fixed batches) and the SDE with constant
noise on finite sums, the data resident on the device. Not compiled, declared
``unsupported`` with the reason (``simulate`` raises; use ``backend="numba"``):
adaptive flows (Dormand-Prince; flows with ``integrator="rk4"`` are compiled: gradient
flow and GD's modified flows of any order, on symbolic losses and quadratic models), Milstein, state-dependent noise that needs a
per-particle eigendecomposition (Hessian noise, the minibatch covariance of a
finite sum, low-rank noise), nudged SGD on symbolic losses and finite sums, the
modified drift on quadratic models and finite sums.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy

from sdesim import codegen
from sdesim.backends import cuda_source
from sdesim.backends.base import Backend, State, Support, needs_velocity
from sdesim.backends.numba_backend import (
    SCHEMES,
    _coefficients,
    _eigenbasis_diagonal,
    _quadratic_step,
    _reference_reason,
    _symbolic_noise,
)
from sdesim.dynamics import ModifiedFlow
from sdesim.dynamics.flows import _gd_field
from sdesim.losses.modified import LR

THREADS = 128
"""Threads per block (any value gives the same numbers)."""


def simulating() -> bool:
    """Whether numba.cuda is Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``); False without numba-cuda."""
    try:
        from numba.cuda.core import config
    except ImportError:
        return False
    return bool(config.ENABLE_CUDASIM)


class CupyBackend(Backend):
    """Compiled kernels on a CUDA GPU (module docstring)."""

    name = "cupy"
    install = 'pip install "sdesim[gpu]"'

    def __init__(self, threads=THREADS):
        self.threads = threads

    def available(self):
        try:   # the numba-cuda package, not Numba's deprecated built-in target (no numba.cuda.core)
            import numba_cuda  # noqa: F401
        except ImportError:
            return False, "numba-cuda is not installed"
        if simulating():
            return True, ""
        try:
            import cupy
        except ImportError:
            return False, "cupy is not installed"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # noqa: BLE001 (no driver, or a driver without a device)
            count = 0
        return (True, "") if count > 0 else (False, "no CUDA device")

    @property
    def xp(self):
        """The array module of the states: CuPy on a GPU, NumPy under the simulator."""
        if simulating():
            return np
        import cupy
        return cupy

    def to_host(self, a):
        return np.asarray(a) if self.xp is np else self.xp.asnumpy(a)

    def support(self, plan) -> Support:
        why = _unsupported_reason(plan)
        return Support("unsupported", why) if why else Support("compiled")

    def start(self, plan, W0) -> State:
        """``W (N, dim)`` as the transpose of a ``(dim, N)`` device array (what the kernels index), in
        the plan's ``dtype``; ``V`` likewise, only with a velocity (:func:`~sdesim.backends.base.needs_velocity`)."""
        xp = self.xp
        Wt = xp.array(np.asarray(W0).T, dtype=_dtype(plan), order="C")
        V = xp.zeros_like(Wt).T if needs_velocity(plan) else None
        return State(W=Wt.T, V=V, diverged_at=xp.full(plan.n_particles, -1, np.int64))

    def advance(self, plan, state, k0, k1, record):
        xp = self.xp
        record = np.asarray(record, dtype=np.int64)
        R = xp.empty((record.size, plan.dim, plan.n_particles), _dtype(plan))
        if plan.family == "flow":
            runner = {"symbolic": _advance_flow_symbolic, "quadratic": _advance_flow_quadratic}[plan.kind]
        else:
            runner = {"symbolic": _advance_symbolic, "quadratic": _advance_quadratic,
                      "finite_sum": _advance_finite_sum}[plan.kind]
        launch = _Launch(self, plan)
        runner(plan, state, k0, k1, xp.asarray(record), R, launch)
        if k1 >= plan.n_steps:               # the run is over: free the device scratch before the caller's copies
            state.scratch.clear()
        return R.transpose(0, 2, 1)


class _Launch:
    """``launch(kernel, *args)``: one thread per particle, compiled without FMA contraction;
    ``put`` and ``ft`` give arrays and numbers in the plan's floating type."""

    def __init__(self, backend, plan):
        self.xp = backend.xp
        self.threads = backend.threads
        self.blocks = max(1, math.ceil(plan.n_particles / self.threads))
        self.dtype = _dtype(plan)
        self.ft = np.dtype(self.dtype).type

    def __call__(self, kernel, *args):
        from sdesim.backends.cuda_rng import no_fma
        with no_fma():
            kernel[self.blocks, self.threads](*args)

    def put(self, a, dtype=None):
        """A copy of a host array on the device (C-contiguous), by default in the plan's type."""
        return self.xp.array(np.asarray(a, dtype=dtype or self.dtype), order="C")


def _dtype(plan) -> str:
    return plan.dtype


def _unsupported_reason(plan) -> str:
    """Why no GPU kernel runs ``plan`` (``""`` when one does)."""
    if plan.family == "flow" and plan.kind != "network":
        return _flow_reason(plan)
    why = _reference_reason(plan)
    if why:
        return why + "; use backend='numba'"
    eig = "needs a per-particle eigendecomposition, which the GPU kernels do not have; use backend='numba'"
    if plan.kind == "symbolic" and plan.noise is not None and plan.noise.kind == "hessian":
        return "noise from the Hessian " + eig
    if plan.kind != "quadratic" and plan.nudge[0]:
        return "nudging " + eig
    if plan.kind == "finite_sum" and plan.family == "sde" and not plan.noise.additive:
        return "the minibatch covariance of a finite sum " + eig
    return ""


def _flow_reason(plan) -> str:
    """Why no GPU kernel runs the flow ``plan`` (``""``: RK4 on a symbolic loss or a quadratic model)."""
    if not plan.integrator.fixed_step:
        return ("flows take adaptive Dormand-Prince steps, which the GPU kernels do not have; use "
                "integrator='rk4' (fixed steps) or backend='numba'")
    if plan.kind not in ("symbolic", "quadratic"):
        return f"RK4 flows run on the GPU for symbolic losses and quadratic models only (a {plan.kind} loss); " \
               "use backend='numba'"
    return ""


def _device_state(state, launch):
    """``(Wt, Vt)``: the ``(dim, N)`` arrays behind ``state.W`` and ``state.V`` (without momentum ``Vt``
    is an empty array the kernels do not read: not ``Wt``, since the simulator copies arguments back)."""
    Wt = state.W.T
    if not Wt.flags.c_contiguous:            # a W replaced by the caller: back to the kernels' layout
        state.W = launch.xp.ascontiguousarray(Wt).T
        Wt = state.W.T
    if state.V is None:
        return Wt, launch.xp.empty((Wt.shape[0], 0), launch.dtype)
    if not state.V.T.flags.c_contiguous:
        state.V = launch.xp.ascontiguousarray(state.V.T).T
    return Wt, state.V.T


# --- symbolic losses ----------------------------------------------------------------
@lru_cache(maxsize=64)
def _symbolic_module(loss, noise, r, scheme, momentum, modified, dtype):
    g = sympy.Matrix(loss.gradient_exprs)
    drift = -(g + LR / 2 * loss.hessian_exprs * g) if modified else -g
    scalars = loss.time_parameters
    src = [cuda_source.header(dtype),
           cuda_source.device_function("drift", list(drift), loss.variables, scalars + (LR,), dtype),
           cuda_source.symbolic_kernel(loss.dim, len(scalars), noise, r, scheme, momentum)]
    return codegen.load_module("\n".join(src), prefix="sdesim_cuda")


def _advance_symbolic(plan, state, k0, k1, record, R, launch):
    loss = plan.loss
    a, b, _ = _coefficients(plan, k0, k1)
    scheme = SCHEMES[type(plan.integrator)] if plan.family == "sde" else "euler"
    noise, G = _symbolic_noise(plan)
    module = _symbolic_module(loss, noise, G.shape[1], scheme, needs_velocity(plan), plan.modified, launch.dtype)
    steps = np.arange(k0, k1 + 1)
    P = loss.parameter_table(plan.times(steps))
    Wt, Vt = _device_state(state, launch)
    launch(module.run, Wt, Vt, k0, k1, launch.put(a), launch.put(b), launch.put(plan.lr_at(steps)),
           launch.put(P), launch.put(G), launch.ft(plan.momentum), launch.ft(plan.lookahead),
           np.uint64(plan.seed), record, R, state.diverged_at, launch.ft(plan.bound))


# --- flows (fixed RK4 steps) ---------------------------------------------------------
@lru_cache(maxsize=64)
def _flow_module(loss, lr, order, dtype):
    """The RK4 kernel on ``loss``'s gradient flow (``order=None``) or GD's modified flow of ``order``."""
    field = -sympy.Matrix(loss.gradient_exprs) if order is None else _gd_field(loss, lr, order).components
    src = [cuda_source.header(dtype),
           cuda_source.device_function("drift", list(field), loss.variables, loss.time_parameters + (LR,), dtype),
           cuda_source.flow_kernel(loss.dim, len(loss.time_parameters))]
    return codegen.load_module("\n".join(src), prefix="sdesim_cuda")


def _flow_order(plan):
    """``None`` for gradient flow, else the order of GD's modified flow."""
    return plan.dynamic.order if isinstance(plan.dynamic, ModifiedFlow) else None


def _advance_flow_symbolic(plan, state, k0, k1, record, R, launch):
    loss, lr = plan.loss, plan.lr or 0.0
    module = _flow_module(loss, lr, _flow_order(plan), launch.dtype)
    P = loss.parameter_table(plan.dt * (k0 + np.arange(2 * (k1 - k0) + 1) / 2))     # the half-step grid
    Wt, _ = _device_state(state, launch)
    launch(module.run_flow, Wt, k0, k1, launch.ft(plan.dt), launch.put(P), launch.ft(lr), record, R,
           state.diverged_at, launch.ft(plan.bound))


def _advance_flow_quadratic(plan, state, k0, k1, record, R, launch):
    r"""The field is :math:`-K (w - w^*)` (:math:`K = \sum_{i \le p} lr^i H^{i+1} / (i + 1)`, ``H`` for
    gradient flow): one RK4 step is the affine :math:`\delta - M \delta`, ``M = RK4.linear_step(K, dt)``."""
    H, order = np.asarray(plan.loss.H, dtype=float), _flow_order(plan)
    K, power = np.zeros_like(H), np.eye(plan.dim)
    for i in range(1 if order is None else order + 1):
        power = power @ H
        K += (plan.lr or 0.0)**i * power / (i + 1)
    M = plan.integrator.linear_step(K, plan.dt)
    n = k1 - k0
    _run_linear(plan, state, k0, k1, record, R, launch, np.ones(n), np.zeros(n), M, np.zeros((plan.dim, 0)), False)


# --- quadratic models ---------------------------------------------------------------
@lru_cache(maxsize=64)
def _linear_module(dim, r, momentum, dtype):
    return codegen.load_module(cuda_source.header(dtype) + cuda_source.linear_kernel(dim, r, momentum),
                               prefix="sdesim_cuda")


@lru_cache(maxsize=64)
def _spectral_module(dim, r, dtype):
    return codegen.load_module(cuda_source.header(dtype) + cuda_source.spectral_kernel(dim, r),
                               prefix="sdesim_cuda")


ROWS = 1 << 16
"""Particles per block of :func:`_columns` (bounds its temporaries, as ``numba_backend.ROWS`` on the CPU)."""


def _columns(f, X, out):
    """``f(X)`` into ``out`` for ``(dim, N)`` arrays (``out`` may be ``X``), block of particles by block:
    temporaries of ``ROWS`` particles, and the same blocks every time (:func:`_carried` checks them)."""
    for lo in range(0, X.shape[1], ROWS):
        out[:, lo:lo + ROWS] = f(X[:, lo:lo + ROWS])


def _carried(state, key, to_w, xp):
    """The kernel's coordinates left by the previous segment, while ``state.W`` is what they gave
    (``to_w(X)``, block by block as :func:`_columns` wrote it; as
    :func:`sdesim.backends.numba_backend._carried`: segmented runs stay bit-identical)."""
    X = state.scratch.get(key)
    Wt = state.W.T
    if X is None or X.shape != Wt.shape:
        return None
    for lo in range(0, X.shape[1], ROWS):
        if not bool(xp.array_equal(to_w(X[:, lo:lo + ROWS]), Wt[:, lo:lo + ROWS], equal_nan=True)):
            return None
    return X


def _advance_quadratic(plan, state, k0, k1, record, R, launch):
    xp = launch.xp
    model, dim = plan.loss, plan.dim
    a, b, lr = _coefficients(plan, k0, k1)
    K, L, kappa, a, b, weak2 = _quadratic_step(plan, a, b, lr)
    kappa = None if plan.momentum or plan.nudge[0] else _eigenbasis_diagonal(model, K, kappa)
    if kappa is not None:
        w_star = launch.put(model.w_star)
        Wt, _ = _device_state(state, launch)
        U = launch.put(model.hessian_eigenvectors)

        # to and from the eigenbasis with the CPU backend's products (same operand layouts, same rounding)
        def rotate(E_):                      # (dim, n) eigenbasis coordinates back to w
            return (xp.ascontiguousarray(E_.T) @ U.T + w_star).T

        def into_eigenbasis(W_):             # (dim, n) states to the eigenbasis
            return ((xp.ascontiguousarray(W_.T) - w_star) @ U).T
        E = _carried(state, "eigenbasis", rotate, xp)
        if E is None:
            E = xp.empty_like(Wt)
            _columns(into_eigenbasis, Wt, E)
        thr = max(0.0, (plan.bound - float(np.abs(model.w_star).max(initial=0.0))) / np.sqrt(dim))
        MT = launch.put((np.ascontiguousarray(model.hessian_eigenvectors).T @ L).T)
        launch(_spectral_module(dim, L.shape[1], launch.dtype).run_spectral, E, k0, k1, launch.put(a),
               launch.put(b), launch.put(kappa), MT, U, w_star, weak2, np.uint64(plan.seed), record, R,
               state.diverged_at, launch.ft(plan.bound), launch.ft(thr))
        for j in range(len(R)):
            _columns(rotate, R[j], R[j])
        _columns(rotate, E, Wt)
        state.scratch["eigenbasis"] = E
        return

    _run_linear(plan, state, k0, k1, record, R, launch, a, b, K, L, weak2)


def _run_linear(plan, state, k0, k1, record, R, launch, a, b, K, L, weak2):
    """Steps ``d <- d - a_k K (d + look v) + b_k L z`` (with momentum ``v``) on the deviations ``W - w*``."""
    xp, dim = launch.xp, plan.dim
    w_star = launch.put(plan.loss.w_star)
    Wt, Vt = _device_state(state, launch)

    def shift(D_):
        return D_ + w_star[:, None]
    D = _carried(state, "deviation", shift, xp)
    if D is None:
        D = xp.empty_like(Wt)
        _columns(lambda W_: W_ - w_star[:, None], Wt, D)
    launch(_linear_module(dim, L.shape[1], needs_velocity(plan), launch.dtype).run, D, Vt, k0, k1,
           launch.put(a), launch.put(b), launch.put(K.T), launch.put(L.T), w_star, launch.ft(plan.momentum),
           launch.ft(plan.lookahead), weak2, np.uint64(plan.seed), record, R, state.diverged_at,
           launch.ft(plan.bound))
    _columns(shift, D, Wt)
    state.scratch["deviation"] = D


# --- finite sums --------------------------------------------------------------------
@lru_cache(maxsize=64)
def _finite_sum_module(loss, mode, r, scheme, momentum, dtype):
    src = [cuda_source.header(dtype), cuda_source.sample_gradient(loss, dtype),
           cuda_source.ARGSORT if mode in (2, 3) else "",
           cuda_source.finite_sum_kernel(loss.dim, len(loss.data_symbols), mode, r, scheme, momentum)]
    return codegen.load_module("\n".join(src), prefix="sdesim_cuda")


def _advance_finite_sum(plan, state, k0, k1, record, R, launch):
    xp, loss, sampler = launch.xp, plan.loss, plan.sampler
    a, b, _ = _coefficients(plan, k0, k1)
    G, scheme, mode, B, key = np.zeros((plan.dim, 0)), "euler", 0, 0, 0
    if sampler is not None:
        mode = {"replacement": 1, "shuffle": 2, "fixed": 3}[sampler.mode]
        B, key = sampler.batch_size, sampler.key
        b = np.zeros_like(b)
    elif plan.family == "sde":
        scheme, G = SCHEMES[type(plan.integrator)], plan.noise.factor
    X = state.scratch.get("data")
    if X is None:
        X = state.scratch["data"] = launch.put(loss.data_matrix)
    size = loss.n_samples if mode == 2 else (loss.n_samples // B if mode == 3 else 1)
    scratch = state.scratch.get("order")
    if scratch is None or scratch[0].shape[1] != size:
        # float64 keys: float32 would round distinct uniforms to ties and change the permutations
        scratch = state.scratch["order"] = (xp.empty((plan.n_particles, size), np.float64),
                                            xp.empty((plan.n_particles, size), np.int32),
                                            xp.empty((plan.n_particles, size), np.int32))
    keys, perm, tmp = scratch
    module = _finite_sum_module(loss, mode, G.shape[1], scheme, needs_velocity(plan), launch.dtype)
    Wt, Vt = _device_state(state, launch)
    launch(module.run_finite_sum, Wt, Vt, X, k0, k1, launch.put(a), launch.put(b), launch.put(G),
           launch.ft(plan.momentum), launch.ft(plan.lookahead), B, np.uint64(plan.seed), np.uint64(key), keys,
           perm, tmp, record, R, state.diverged_at, launch.ft(plan.bound))


backend = CupyBackend()
