"""The Numba backend: compiled ensemble kernels, parallel over particles, time loop inside.

Kernels are generated per loss (:mod:`sdesim.backends.numba_source`) or fixed
(:mod:`sdesim.backends.numba_linear` for quadratic models, built from the
integrator's affine step) and reproduce the NumPy reference backend's random
streams. What has no compiled kernel runs the NumPy reference stepper, as
:meth:`NumbaBackend.support` says (with the reason) and the result's metadata
records: flows (an adaptive step needs the ensemble's error between steps, and
takes few of them; fixed RK4 steps run there too; the vector field of a symbolic loss
is compiled), Milstein, low-rank noise of a
state-dependent covariance, the modified drift on finite sums and quadratic
models, nudged SGD on finite sums.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy

from sdesim import codegen, integrators
from sdesim._threading import launch
from sdesim.backends import numba_source
from sdesim.backends.base import Backend, Support
from sdesim.backends.numpy_backend import FLOAT64_ONLY
from sdesim.backends.numpy_backend import backend as reference
from sdesim.losses.modified import LR

CHUNK = 256
SPECTRAL_CHUNK = 64
SGD_CHUNK = 32
SCHEMES = {integrators.EulerMaruyama: "euler", integrators.StochasticHeun: "heun",
           integrators.WeakOrder2: "weak2"}


class NumbaBackend(Backend):
    """Compiled kernels on the CPU (module docstring)."""

    name = "numba"

    def support(self, plan) -> Support:
        if plan.dtype != "float64":
            return Support("unsupported", FLOAT64_ONLY)
        why = _reference_reason(plan)
        return Support("reference", why) if why else Support("compiled")

    def start(self, plan, W0):
        """The state in the layout of the kernels of symbolic and finite-sum losses: ``W.T`` (and
        ``V.T``) contiguous ``(dim, N)``, so that a segment steps the state in place, without a copy."""
        if plan.kind != "quadratic" and self.support(plan).level == "compiled":
            W0 = np.asfortranarray(W0, dtype=float)          # V = zeros_like(W0) follows its layout
        return super().start(plan, W0)

    def advance(self, plan, state, k0, k1, record):
        if self.support(plan).level == "reference":
            return reference.advance(plan, state, k0, k1, record)
        record = np.ascontiguousarray(record, dtype=np.int64)
        R = np.empty((record.size, plan.n_particles, plan.dim))
        runner = {"symbolic": _advance_symbolic, "quadratic": _advance_quadratic,
                  "finite_sum": _advance_finite_sum}[plan.kind]
        launch(runner, plan, state, k0, k1, record, R)
        return list(R)


def _reference_reason(plan) -> str:
    """Why no compiled kernel runs ``plan`` (``""`` when one does)."""
    kind = plan.kind
    if kind == "network":
        return "a network loss is full network passes, one particle at a time (no compiled kernel)"
    if plan.family == "flow":
        if plan.integrator.fixed_step:
            return "flows run on the reference (fixed RK4 steps on the loss's vector field)"
        return "flows take adaptive Dormand-Prince steps (on the compiled vector field)"
    if plan.family == "sde":
        compiled = plan.integrator.has_affine if kind == "quadratic" else type(plan.integrator) in SCHEMES
        if not compiled:
            return f"{type(plan.integrator).__name__} has no compiled kernel"
        if not plan.noise.additive and plan.noise.rank is not None:
            return "low-rank noise of a state-dependent covariance needs an eigendecomposition per step"
        if plan.modified and kind != "symbolic":
            return "the modified drift needs Hessian-gradient products"
    if plan.nudge[0] and kind == "finite_sum":
        return "nudging a finite sum needs its Hessian eigenvectors every step"
    if plan.nudge[0] and kind == "quadratic" and plan.loss.hessian_eigenvectors.shape[1] < plan.dim:
        return "nudging a quadratic model stored by its top eigenpairs needs the eigenvectors of the full H"
    return ""


def _coefficients(plan, k0, k1):
    """Per-step ``(a_k, b_k, lr_k)`` of the common update (see :mod:`.numba_source`)."""
    lr = plan.lr_at(np.arange(k0, k1))
    if plan.family == "sde":
        a = np.full(k1 - k0, plan.dt)
        b = np.sqrt(lr * plan.dt * plan.noise_scale / plan.batch_size)
        return a, b, lr
    if plan.noise is None and plan.sampler is None:          # GD
        return lr, np.zeros_like(lr), lr
    return lr, -lr / np.sqrt(plan.batch_size), lr


# --- symbolic losses ----------------------------------------------------------------
@lru_cache(maxsize=64)
def _symbolic_module(loss, noise, r, scheme, momentum, nudge, modified):
    g = sympy.Matrix(loss.gradient_exprs)
    drift = -(g + LR / 2 * loss.hessian_exprs * g) if modified else -g
    scalars = loss.time_parameters
    src = [numba_source.HEADER,
           numba_source.point_function("drift", list(drift), loss.variables, scalars + (LR,))]
    if noise == "hessian" or nudge:
        src.append(numba_source.point_function("hessian", list(loss.hessian_exprs), loss.variables, scalars))
    src.append(numba_source.symbolic_kernel(loss.dim, len(scalars), noise, r, scheme, momentum, nudge))
    return codegen.load_module("\n".join(src), prefix="sdesim_run")


def _symbolic_noise(plan):
    """``(kind, G)`` of the symbolic kernel: ``"none"``, ``"identity"``, ``"matrix"`` or ``"hessian"``."""
    noise, dim = plan.noise, plan.dim
    if noise is None:
        return "none", np.zeros((dim, 0))
    if noise.kind == "hessian":
        return "hessian", np.eye(dim)
    return ("identity" if np.array_equal(noise.factor, np.eye(dim)) else "matrix"), noise.factor


def _advance_symbolic(plan, state, k0, k1, record, R):
    loss = plan.loss
    a, b, _ = _coefficients(plan, k0, k1)
    scheme = SCHEMES[type(plan.integrator)] if plan.family == "sde" else "euler"
    noise, G = _symbolic_noise(plan)
    nudge_k, nudge_factor = plan.nudge
    module = _symbolic_module(loss, noise, G.shape[1], scheme, bool(plan.momentum), bool(nudge_k),
                              plan.modified)
    # parameters and learning rates at t_k for k0 <= k <= k1: the predictor-corrector schemes
    # evaluate their second drift at t_{k+1}, as the NumPy integrators do
    steps = np.arange(k0, k1 + 1)
    P = loss.parameter_table(plan.times(steps))
    lr = plan.lr_at(steps)
    Wt, Vt = _columns(state.W, plan.dim), _columns(state.V, plan.dim)
    module.run(Wt, Vt, k0, k1, a, b, lr, P, np.ascontiguousarray(G), plan.momentum, plan.lookahead,
               int(nudge_k), nudge_factor, np.uint64(plan.seed), record, R,
               state.diverged_at, plan.bound, CHUNK)
    _store(state, Wt, Vt)


# --- quadratic models ---------------------------------------------------------------
def _quadratic_step(plan, a, b, lr):
    """``(K, L, kappa, a, b, three_point)`` of the linear kernel: the integrator's affine step, or SGD/GD's."""
    model = plan.loss
    H, dim = model.H, model.dim
    if plan.family == "sde":
        step = plan.integrator.affine(H, model.hessian_eigenvalues, plan.noise.factor, plan.dt,
                                      plan.noise_scale * plan.lr / plan.batch_size)
        if step.exact:
            a, b = np.ones_like(a), np.sqrt(lr / plan.lr)
        return step.K, step.L, step.kappa, a, b, step.three_point
    L = np.zeros((dim, 0)) if plan.noise is None else plan.noise.factor
    nudge_k, nudge_factor = plan.nudge
    if nudge_k:
        U = model.hessian_eigenvectors[:, :nudge_k]
        Pn = np.eye(dim) - (1.0 - nudge_factor) * U @ U.T
        return Pn @ H, Pn @ L, None, a, b, False
    return H, L, model.hessian_eigenvalues, a, b, False


def _advance_quadratic(plan, state, k0, k1, record, R):
    from sdesim.backends import numba_linear
    model, dim = plan.loss, plan.dim
    a, b, lr = _coefficients(plan, k0, k1)
    K, L, kappa, a, b, weak2 = _quadratic_step(plan, a, b, lr)
    w_star = np.ascontiguousarray(model.w_star, dtype=float)
    # momentum and nudging amplify the rounding differences of the rotation (1e-14 against the
    # dense kernel's 5e-15 from the NumPy reference at dim 20): they keep the dense kernel
    kappa = None if plan.momentum or plan.nudge[0] else _eigenbasis_diagonal(model, K, kappa)
    if kappa is not None:
        U = np.ascontiguousarray(model.hessian_eigenvectors)

        def rotate(E_):                    # the eigenbasis back to w
            return E_ @ U.T + w_star
        E = _carried(state, "eigenbasis", rotate)
        if E is None:
            E = np.ascontiguousarray((state.W - w_star) @ U)
        RE = np.empty_like(R)
        thr = max(0.0, (plan.bound - float(np.abs(w_star).max(initial=0.0))) / np.sqrt(dim))
        numba_linear.run_spectral(E, k0, k1, a, b, kappa, np.ascontiguousarray((U.T @ L).T), U, w_star,
                                  weak2, np.uint64(plan.seed), record, RE, state.diverged_at,
                                  plan.bound, thr, SPECTRAL_CHUNK)
        for j in range(len(RE)):
            _rows(rotate, RE[j], R[j])
        del RE
        _rows(rotate, E, state.W)
        state.scratch["eigenbasis"] = E
        return

    def shift(D_):
        return D_ + w_star
    D = _carried(state, "deviation", shift)
    if D is None:
        D = np.ascontiguousarray(state.W - w_star)
    V = np.empty((0, dim)) if state.V is None else state.V
    numba_linear.run(D, V, k0, k1, a, b, np.ascontiguousarray(K.T), np.ascontiguousarray(L.T),
                     w_star, plan.momentum, plan.lookahead, weak2,
                     np.uint64(plan.seed), record, R, state.diverged_at, plan.bound, CHUNK)
    _rows(shift, D, state.W)
    state.scratch["deviation"] = D


ROWS = 1 << 16
"""Rows per block of :func:`_rows` (bounds its temporaries)."""


def _rows(f, X, out):
    """``f(X)`` into ``out``, row block by row block: bounded temporaries, and the same blocks
    every time, so the same numbers (:func:`_carried` checks them)."""
    for lo in range(0, len(X), ROWS):
        out[lo:lo + ROWS] = f(X[lo:lo + ROWS])


def _carried(state, key, to_w):
    """The kernel's own coordinates left by the previous segment, while ``state.W`` is what they gave
    (``to_w(X)``, block by block as :func:`_rows` wrote it: no copy of the ensemble).

    Converting to ``w - w*`` (and the eigenbasis) and back rounds; carrying the kernel's
    coordinates across segments keeps segmented runs bit-identical to a single segment.
    """
    X = state.scratch.get(key)
    if X is None or X.shape != state.W.shape:
        return None
    for lo in range(0, len(X), ROWS):
        if not np.array_equal(to_w(X[lo:lo + ROWS]), state.W[lo:lo + ROWS], equal_nan=True):
            return None
    return X


def _eigenbasis_diagonal(model, K, kappa=None):
    """``kappa`` with ``K = U diag(kappa) U^T`` in the model's full eigenbasis ``U``, else ``None``.

    Every ``K`` of a quadratic model is a function of ``H`` (``H``, ``H - dt H^2 / 2``,
    ``I - e^{-H dt}``, the nudged ``P H``), hence diagonal in its eigenbasis; the
    check guards against anything else. Needs all ``dim`` eigenvectors (a dense Hessian).
    ``kappa``, when given, is the closed form from the eigenvalues (more accurate).
    """
    U = model.hessian_eigenvectors
    if U.shape[1] != model.dim:
        return None
    if kappa is not None:
        return np.ascontiguousarray(kappa, dtype=float)
    KU = U.T @ K @ U
    kappa = np.diag(KU).copy()
    off = np.abs(KU - np.diag(kappa)).max(initial=0.0)
    if off > 1e-12 * max(np.abs(K).max(initial=0.0), np.finfo(float).tiny):
        return None
    return kappa


# --- finite sums --------------------------------------------------------------------
@lru_cache(maxsize=64)
def _finite_sum_module(loss):
    src = [numba_source.HEADER, loss_point_source(loss), numba_source.FINITE_SUM]
    return codegen.load_module("\n".join(src), prefix="sdesim_run")


@lru_cache(maxsize=64)
def _finite_sum_sgd_module(loss):
    src = [numba_source.HEADER, loss_point_scalar_source(loss),
           numba_source.finite_sum_sgd_kernel(loss.dim, len(loss.data_symbols))]
    return codegen.load_module("\n".join(src), prefix="sdesim_run")


def loss_point_scalar_source(loss):
    """Source of ``sample_grad_s(w_0, .., x_0, ..) -> tuple``: :func:`loss_point_source` on scalars.

    Same statements in the same order (only the reads differ), so the same numbers.
    """
    grad = [sympy.diff(loss.expr, v) for v in loss.variables]
    inputs = codegen.Inputs((("w", loss.variables), ("x", loss.data_symbols)))
    body = codegen._body(grad, inputs, lambda a_, i: f"{a_}_{i}", lambda k: f"_o{k}",
                         codegen._NumbaPrinter())
    args = [f"w_{i}" for i in range(loss.dim)] + [f"x_{i}" for i in range(len(loss.data_symbols))]
    outputs = ", ".join(f"_o{k}" for k in range(loss.dim))
    return (f'\n@njit(inline="always")\ndef sample_grad_s({", ".join(args)}):\n'
            + "".join("    " + line + "\n" for line in body) + f"    return ({outputs},)\n")


def loss_point_source(loss):
    """Source of ``sample_grad(w, x, out)`` for a finite-sum loss."""
    grad = [sympy.diff(loss.expr, v) for v in loss.variables]
    inputs = codegen.Inputs((("w", loss.variables), ("x", loss.data_symbols)))
    body = codegen._body(grad, inputs, lambda a_, i: f"{a_}[{i}]", lambda k: f"out[{k}]",
                         codegen._NumbaPrinter())
    return '\n@njit(inline="always")\ndef sample_grad(w, x, out):\n' + \
        "".join("    " + line + "\n" for line in body)


def _advance_finite_sum(plan, state, k0, k1, record, R):
    loss = plan.loss
    a, b, _ = _coefficients(plan, k0, k1)
    mode, B, anisotropic, heun, weak2 = 0, 0, False, False, False
    G = np.zeros((loss.dim, 0))
    sampler = plan.sampler
    if sampler is not None:
        mode = {"replacement": 1, "shuffle": 2, "fixed": 3}[sampler.mode]
        B = sampler.batch_size
        b = np.zeros_like(b)
    elif plan.family == "sde":
        scheme = SCHEMES[type(plan.integrator)]
        heun, weak2 = scheme != "euler", scheme == "weak2"
        anisotropic = not plan.noise.additive
        G = plan.noise.factor if plan.noise.additive else G
    Wt, Vt = _columns(state.W, plan.dim), _columns(state.V, plan.dim)
    if mode == 1:
        # the kernel always carries a velocity: without one it compiled 3-4% slower (W3 of
        # benchmarks/simulate.py); with mu = 0 it is scratch, d_k, and never read back
        V = Vt if state.V is not None else state.scratch.get("velocity")
        if V is None:
            V = state.scratch["velocity"] = np.zeros_like(Wt)
        _finite_sum_sgd_module(loss).run_sgd(
            Wt, V, loss.data_matrix, k0, k1, a, b, plan.momentum, plan.lookahead, B, np.uint64(sampler.key),
            record, R, state.diverged_at, plan.bound, SGD_CHUNK)
        _store(state, Wt, Vt)
        return
    n = loss.n_samples
    perm = state.scratch.get("perm")
    if perm is None or perm.shape != (plan.n_particles, n):
        perm = state.scratch["perm"] = np.zeros((plan.n_particles, n), np.int64)
    key = sampler.key if sampler is not None else 0
    _finite_sum_module(loss).run(
        Wt, Vt, loss.data_matrix, k0, k1, a, b, G, plan.momentum, plan.lookahead, mode, B, anisotropic, heun,
        weak2, np.uint64(plan.seed), np.uint64(key), perm, record, R, state.diverged_at, plan.bound, CHUNK)
    _store(state, Wt, Vt)


def _columns(A, dim):
    """``A (N, dim)`` as the kernels' contiguous ``(dim, N)`` (a view of the state :meth:`NumbaBackend.start`
    lays out); ``(dim, 0)`` for a missing velocity."""
    return np.empty((dim, 0)) if A is None else np.ascontiguousarray(A.T)


def _store(state, Wt, Vt):
    """Write the kernels' columns back to the state, unless they are views of it."""
    if not np.shares_memory(Wt, state.W):
        state.W[:] = Wt.T
    if state.V is not None and not np.shares_memory(Vt, state.V):
        state.V[:] = Vt.T


backend = NumbaBackend()
