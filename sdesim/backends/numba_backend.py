"""The Numba backend: compiled ensemble kernels, parallel over particles, time loop inside.

Kernels are generated per loss (:mod:`sdesim.backends.numba_source`) or fixed
(:mod:`sdesim.backends.numba_linear` for quadratic models) and reproduce the
NumPy reference backend's random streams. Flows use the same adaptive
Dormand-Prince driver as the NumPy backend on the compiled vector field: an
adaptive step needs the ensemble's error between steps, and takes few of them.
A few combinations without a compiled kernel (Milstein, low-rank noise of a
state-dependent covariance, the modified drift on finite sums and quadratic
models, nudged SGD on finite sums) run the NumPy reference stepper, as
:func:`reference_only` says and the result's metadata records.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy

from sdesim import codegen
from sdesim.backends import numba_source, numpy_backend
from sdesim.backends.common import sampling_key
from sdesim.dynamics import GD, SGD, SGDDiffusion
from sdesim.dynamics.noise import constant_factor, psd_factor
from sdesim.integrators.ou_exact import ou_propagators
from sdesim.losses.modified import LR
from sdesim.errors import ConfigError

name = "numba"
CHUNK = 256
SPECTRAL_CHUNK = 64
SGD_CHUNK = 32
SCHEMES = {None: "euler", "euler_maruyama": "euler", "heun": "heun", "weak2": "weak2"}


def _scheme(problem):
    try:
        return SCHEMES[problem.integrator]
    except KeyError:
        raise ConfigError(f"integrator {problem.integrator!r} does not run on a {problem.kind} loss: "
                         f"choose one of {sorted(k for k in SCHEMES if k)} or 'milstein' "
                         f"('exact_ou' needs a QuadraticModel)") from None


def reference_only(problem) -> str | None:
    """Why no compiled kernel runs this problem (``None`` when one does).

    These combinations step with the NumPy reference stepper (its loss
    evaluations are still compiled); the reason lands in the result's metadata.
    """
    dyn, kind = problem.dynamic, problem.kind
    if isinstance(dyn, SGDDiffusion):
        if problem.integrator == "milstein":
            return "Milstein differentiates the diffusion factor numerically"
        if dyn.noise == "lowrank" and kind != "quadratic":
            return "low-rank noise of a state-dependent covariance needs an eigendecomposition per step"
        if dyn.modified and kind != "symbolic":
            return "the modified drift needs Hessian-gradient products"
    if isinstance(dyn, SGD) and dyn.nudge_k and kind == "finite_sum":
        return "nudging a finite sum needs its Hessian eigenvectors every step"
    return None


def advance(problem, state, k0, k1, record):
    """Advance ``state`` from step ``k0`` to ``k1``; return the states at steps ``record``."""
    dyn = problem.dynamic
    if not isinstance(dyn, (GD, SGD, SGDDiffusion)):
        return numpy_backend.advance_flow(problem, state, k0, k1, record)
    reason = reference_only(problem)
    if reason:
        state.extra["stepper"] = f"NumPy reference stepper: {reason}"
        return numpy_backend.advance(problem, state, k0, k1, record)
    record = np.ascontiguousarray(record, dtype=np.int64)
    R = np.empty((record.size, problem.n_particles, problem.dim))
    runner = {"symbolic": _advance_symbolic, "quadratic": _advance_quadratic,
              "finite_sum": _advance_finite_sum}[problem.kind]
    runner(problem, state, k0, k1, record, R)
    return list(R)


def _coefficients(problem, k0, k1):
    """Per-step ``(a_k, b_k, lr_k)`` of the common update (see :mod:`.numba_source`)."""
    dyn = problem.dynamic
    t = np.arange(k0, k1) * problem.dt
    lr = np.asarray(dyn.lr_at(t), dtype=float) * np.ones(k1 - k0)
    if isinstance(dyn, SGDDiffusion):
        a = np.full(k1 - k0, problem.dt)
        b = np.sqrt(lr * problem.dt * dyn.noise_scale / dyn.batch_size)
        return a, b, lr
    if isinstance(dyn, GD):
        return lr, np.zeros_like(lr), lr
    return lr, -lr / np.sqrt(dyn.batch_size), lr


def _momentum(dyn):
    mu = getattr(dyn, "momentum", 0.0)
    return mu, (mu if getattr(dyn, "nesterov", False) else 0.0)


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


def _advance_symbolic(problem, state, k0, k1, record, R):
    loss, dyn = problem.loss, problem.dynamic
    a, b, lr = _coefficients(problem, k0, k1)
    scheme = _scheme(problem) if isinstance(dyn, SGDDiffusion) else "euler"
    if isinstance(dyn, GD):
        noise, G = "none", np.zeros((loss.dim, 0))
    elif isinstance(dyn, SGDDiffusion) and dyn.noise == "isotropic":
        noise, G = "identity", np.eye(loss.dim)
    else:
        G = constant_factor(loss, dyn.noise_covariance, dyn.noise_factor)
        if G is None:
            noise, G = "hessian", np.eye(loss.dim)
        else:
            noise = "identity" if np.array_equal(G, np.eye(loss.dim)) else "matrix"
    if scheme != "euler" and noise == "hessian":
        raise ConfigError(f"integrator {problem.integrator!r} needs additive noise; "
                         "this diffusion's noise depends on w (use 'euler_maruyama')")
    mu, look = _momentum(dyn)
    nudge = getattr(dyn, "nudge_k", 0)
    module = _symbolic_module(loss, noise, G.shape[1], scheme, bool(mu), bool(nudge),
                              bool(getattr(dyn, "modified", False)))
    # parameters and learning rates at t_k for k0 <= k <= k1: the predictor-corrector schemes
    # evaluate their second drift at t_{k+1}, as the NumPy integrators do
    t = np.arange(k0, k1 + 1) * problem.dt
    P = loss.parameter_table(t)
    lr = np.asarray(dyn.lr_at(t), dtype=float) * np.ones(k1 - k0 + 1)
    Wt = np.ascontiguousarray(state.W.T)
    Vt = np.ascontiguousarray(state.V.T)
    module.run(Wt, Vt, k0, k1, a, b, lr, P, np.ascontiguousarray(G), mu, look, int(nudge),
               float(getattr(dyn, "nudge_factor", 1.0)), np.uint64(problem.seed), record, R,
               state.diverged_at, float(problem.bound), CHUNK)
    state.W[:] = Wt.T
    state.V[:] = Vt.T


# --- quadratic models ---------------------------------------------------------------
def _advance_quadratic(problem, state, k0, k1, record, R):
    from sdesim.backends import numba_linear
    model, dyn = problem.loss, problem.dynamic
    H = model.H
    dim = model.dim
    a, b, lr = _coefficients(problem, k0, k1)
    weak2 = False
    lam = model.hessian_eigenvalues
    kappa = lam  # K = U diag(kappa) U^T, when known in closed form
    if isinstance(dyn, SGDDiffusion):
        L = {"isotropic": np.eye(dim), "anisotropic": model.noise_sqrt()}.get(dyn.noise)
        if L is None:
            L = psd_factor(model.S, dyn.rank)
        integ = problem.integrator or "euler_maruyama"
        dt = problem.dt
        if integ == "exact_ou":
            A, Lq = ou_propagators(H, dyn.noise_scale * dyn.lr / dyn.batch_size * (L @ L.T), dt)
            K, L = np.eye(dim) - A, Lq
            kappa = None
            a = np.ones_like(a)
            b = np.sqrt(lr / dyn.lr)
        elif _scheme(problem) in ("heun", "weak2"):
            K = H - 0.5 * dt * H @ H
            kappa = lam - 0.5 * dt * lam * lam
            L = (np.eye(dim) - 0.5 * dt * H) @ L
            a = np.ones_like(a) * dt
            weak2 = _scheme(problem) == "weak2"
        else:
            K = H
    else:
        K = H
        L = model.noise_sqrt() if isinstance(dyn, SGD) else np.zeros((dim, 0))
        if isinstance(dyn, SGD) and dyn.nudge_k:
            U = model.hessian_eigenvectors[:, :dyn.nudge_k]
            Pn = np.eye(dim) - (1.0 - dyn.nudge_factor) * U @ U.T
            K, L = Pn @ H, Pn @ L
            kappa = None
    mu, look = _momentum(dyn)
    w_star = np.ascontiguousarray(model.w_star, dtype=float)
    # momentum and nudging amplify the rounding differences of the rotation (1e-14 against the
    # dense kernel's 5e-15 from the NumPy reference at dim 20): they keep the dense kernel
    nudged = isinstance(dyn, SGD) and dyn.nudge_k
    kappa = None if mu or nudged else _eigenbasis_diagonal(model, K, kappa)
    if kappa is not None:
        U = np.ascontiguousarray(model.hessian_eigenvectors)
        E = _carried(state, "eigenbasis")
        if E is None:
            E = np.ascontiguousarray((state.W - w_star) @ U)
        RE = np.empty_like(R)
        thr = max(0.0, (problem.bound - float(np.abs(w_star).max(initial=0.0))) / np.sqrt(dim))
        numba_linear.run_spectral(E, k0, k1, a, b, kappa, np.ascontiguousarray((U.T @ L).T), U, w_star,
                                  weak2, np.uint64(problem.seed), record, RE, state.diverged_at,
                                  float(problem.bound), thr, SPECTRAL_CHUNK)
        R[:] = RE @ U.T + w_star
        state.W[:] = E @ U.T + w_star
        _carry(state, "eigenbasis", E)
        return
    D = _carried(state, "deviation")
    if D is None:
        D = np.ascontiguousarray(state.W - w_star)
    numba_linear.run(D, state.V, k0, k1, a, b, np.ascontiguousarray(K.T), np.ascontiguousarray(L.T),
                     w_star, mu, look, weak2,
                     np.uint64(problem.seed), record, R, state.diverged_at, float(problem.bound), CHUNK)
    state.W[:] = D + w_star
    _carry(state, "deviation", D)


def _carried(state, key):
    """The kernel's own coordinates left by the previous segment, while ``state.W`` is what they gave.

    Converting to ``w - w*`` (and the eigenbasis) and back rounds; carrying the kernel's
    coordinates across segments keeps segmented runs bit-identical to a single segment.
    """
    saved = state.extra.get(key)
    if saved is not None and np.array_equal(saved[0], state.W, equal_nan=True):
        return saved[1]
    return None


def _carry(state, key, X):
    state.extra[key] = (state.W.copy(), X)


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


def _advance_finite_sum(problem, state, k0, k1, record, R):
    loss, dyn = problem.loss, problem.dynamic
    a, b, _ = _coefficients(problem, k0, k1)
    mode, B, anisotropic, heun, weak2 = 0, 0, False, False, False
    G = np.zeros((loss.dim, 0))
    if isinstance(dyn, SGD):
        mode = {"replacement": 1, "shuffle": 2, "fixed": 3}[dyn.sampling]
        B = dyn.batch_size
        b = np.zeros_like(b)
    elif isinstance(dyn, SGDDiffusion):
        scheme = _scheme(problem)
        heun, weak2 = scheme != "euler", scheme == "weak2"
        if dyn.noise == "isotropic":
            G = np.eye(loss.dim)
        else:
            anisotropic = True
            if heun:
                raise ConfigError(f"integrator {problem.integrator!r} needs additive noise; "
                                 "anisotropic finite-sum noise depends on w (use 'euler_maruyama')")
    mu, look = _momentum(dyn)
    n = loss.n_samples
    perm = state.extra.get("perm")
    if perm is None or perm.shape != (problem.n_particles, n):
        perm = state.extra["perm"] = np.zeros((problem.n_particles, n), np.int64)
    Wt = np.ascontiguousarray(state.W.T)
    Vt = np.ascontiguousarray(state.V.T)
    if mode == 1:
        _finite_sum_sgd_module(loss).run_sgd(
            Wt, Vt, loss.data_matrix, k0, k1, a, b, mu, look, B, np.uint64(sampling_key(problem.seed)),
            record, R, state.diverged_at, float(problem.bound), SGD_CHUNK)
        state.W[:] = Wt.T
        state.V[:] = Vt.T
        return
    _finite_sum_module(loss).run(
        Wt, Vt, loss.data_matrix, k0, k1, a, b, G, mu, look, mode, B, anisotropic, heun, weak2,
        np.uint64(problem.seed), np.uint64(sampling_key(problem.seed)), perm, record, R,
        state.diverged_at, float(problem.bound), CHUNK)
    state.W[:] = Wt.T
    state.V[:] = Vt.T
