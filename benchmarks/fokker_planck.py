"""Fokker-Planck benchmark: the issue-4 targets with accuracy, peers in the same run.

``python benchmarks/fokker_planck.py`` runs the target cases, each in a fresh
subprocess (BLAS single-threaded, best of ``--repeat`` timings in each), and prints
one table: wall time and error against the exact answer, for

- ``1d-steady``: double well ``(x^2-1)^2``, ``T = 0.1``, 1000 cells (L1 vs Gibbs);
- ``2d-steady-N``: ``(x^2-1)^2 + 2 y^2 + 0.5 x y`` on ``[-2.5, 2.5]^2``, ``D = 0.1 I``,
  ``N^2`` cells, N = 200, 400, 1000 (L1 vs Gibbs), closed form and linear solve;
- ``steps-400``: 1000 implicit steps ``dt = 1e-3`` at 400^2 of the OU process
  ``C = (x^2 + 2 y^2) / 2``, ``D = 0.1 I``, from ``N((1, 0.5), 0.05 I)`` (L1 vs the
  exact Gaussian at ``t = 1``; mean and covariance errors), per ``method``;
- ``mfpt-1d``: mean first-passage time ``-1 -> x >= 1`` in the double well at
  ``T = 0.1`` against the double quadrature, 10^4 and 2 10^4 cells and their
  Richardson extrapolation ``(4 tau_h/2 - tau_h) / 3``;
- ``lyapunov``: covariance of the non-equilibrium steady state of the quadratic model
  ``H = diag(1, 4)``, ``D = 0.05 [[1, .6], [.6, 1]]`` against the continuous Lyapunov
  solution, 240x160, 480x320 and Richardson; plus non-negativity at 200^2 with
  ``D = 0.1 [[1, .8], [.8, 1]]`` on the double well;
- ``ness-1000^2``, ``ness-128^3``: the non-equilibrium steady state of the ``--table`` loss with
  ``D = 0.1 (I + offdiag 0.5)`` in 2D, ``0.1 (I + offdiag 0.3)`` in 3D (no closed form), solved now (geometric multigrid on the
  Gibbs-symmetrised system) and by the previous revision's solve (AMG on the pinned system itself, timed in the
  same process on the same operator), with the relative residual of each and their L1 distance;
- peers (import-guarded, skipped when not installed): ``fplanck`` (steady state by
  shift-invert ``eigs``; time stepping only as a matrix exponential) and ``py-pde``
  (explicit and fixed-point "implicit" Euler; no steady-state solver).

``--backend cupy`` runs the GPU targets instead (``FokkerPlanck(..., backend="cupy")``): the
1000^2 NESS (target < 1 s), 1000 split steps at 1000^2 (< 2 s) and 100 isotropic split steps at
256^3 (< 5 s); without CuPy or a device it stops with `BackendUnavailableError`.

``--table`` prints the older direct / iterative / split table (200^2, 1000^2, 100^3,
100 backward-Euler steps, peak memory).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CASES = {
    "2d-200": (2, 200),
    "2d-1000": (2, 1000),
    "3d-100": (3, 100),
}
EXPR = {2: "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y", 3: "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y + z**2 + 0.3*x*z"}
T, DT, STEPS = 0.1, 0.01, 100


def run_case(name, noise, solver, method="backward-euler"):
    import sdesim as sd

    dim, n = CASES[name]
    loss = sd.Loss(EXPR[dim])
    grid = sd.Grid([(-2.5, 2.5)] * dim, (n,) * dim)
    D = T * (np.eye(dim) if noise == "iso" else 0.5 * (np.eye(dim) + np.ones((dim, dim))))
    t0 = time.perf_counter()
    fp = sd.FokkerPlanck(loss, diffusion=D, grid=grid, solver=solver)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    rho = fp.steady_state()
    t_steady = time.perf_counter() - t0
    gibbs = grid.normalize(np.exp(-(fp.potential - fp.potential.min()) / T))
    rho0 = grid.gaussian([1.0] + [0.0] * (dim - 1), 0.05 * np.eye(dim))
    t0 = time.perf_counter()
    res = fp.evolve(rho0, STEPS * DT, DT, method=method)
    t_evolve = time.perf_counter() - t0
    return {"case": name, "noise": noise, "solver": "split" if method == "split" else solver, "cells": grid.size, "build_s": t_build,
            "steady_s": t_steady, "evolve100_s": t_evolve,
            "l1_gibbs": float(np.abs(rho - gibbs).sum() * grid.cell_volume) if noise == "iso" else None,
            "min_rho": float(rho.min()),
            "mass_err": float(abs(res.mass()[-1] - 1)),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def table_main(args):
    """The direct / iterative / split table (one subprocess per case)."""
    plan = [(case, noise, solver) for case in ("2d-200", "2d-1000") for noise in ("iso", "aniso")
            for solver in ("direct", "iterative", "split")]
    plan += [("3d-100", noise, solver) for noise in ("iso", "aniso") for solver in ("iterative", "split")]
    plan = [p for p in plan if p[0] in args.only]
    rows = {}
    # vector operations gain nothing from BLAS threads on a shared 2-core machine
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"{'case':8} {'noise':5} {'solver':9} {'cells':>8} {'build s':>8} {'steady s':>9} "
          f"{'100 steps s':>12} {'L1 Gibbs':>9} {'min rho':>9} {'mass err':>9} {'peak MB':>8}", flush=True)
    for case, noise, solver in plan:
        try:
            method = "split" if solver == "split" else "backward-euler"
            out = subprocess.run([sys.executable, __file__, "--table", "--case", case, "--noise", noise,
                                  "--solver", "auto" if solver == "split" else solver,
                                  "--method", method],
                                 capture_output=True, text=True, timeout=args.timeout, env=env, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError, IndexError,
                json.JSONDecodeError):
            print(f"{case:8} {noise:5} {solver:9} did not finish (timeout {args.timeout:.0f} s or error)",
                  flush=True)
            continue
        rows[case, noise, solver] = r
        l1 = "-" if r["l1_gibbs"] is None else f"{r['l1_gibbs']:.1e}"
        print(f"{case:8} {noise:5} {solver:9} {r['cells']:8d} {r['build_s']:8.2f} {r['steady_s']:9.2f} "
              f"{r['evolve100_s']:12.2f} {l1:>9} {r['min_rho']:9.1e} {r['mass_err']:9.1e} "
              f"{r['peak_rss_mb']:8.0f}", flush=True)
    for case, noise, solver in plan:
        d, o = rows.get((case, noise, "direct")), rows.get((case, noise, solver))
        if d and o and solver != "direct":
            print(f"{case} {noise}: {solver} / direct time: steady {o['steady_s'] / d['steady_s']:.2f}, "
                  f"100 steps {o['evolve100_s'] / d['evolve100_s']:.2f}")


@contextlib.contextmanager
def _noop():
    yield


def best(fn, repeat):
    """(best wall time over ``repeat`` calls, last result)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


WELL = "(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"


def gibbs(grid, C, T):
    return grid.normalize(np.exp(-(C - C.min()) / T))


def t_1d_steady(repeat):
    import sdesim as sd

    g = sd.Grid([(-2.5, 2.5)], (1000,))
    fp = sd.FokkerPlanck(sd.Loss("(x**2 - 1)**2"), temperature=0.1, grid=g)
    t, rho = best(fp.steady_state, 20 * repeat)
    t_solve, rho_s = best(lambda: fp.steady_state(closed_form=False), 5 * repeat)
    ref = gibbs(g, fp.potential, 0.1)
    return [("1d-steady 1000", "closed form", t, np.abs(rho - ref).sum() * g.cell_volume, "L1 vs Gibbs"),
            ("1d-steady 1000", "solve (tridiagonal)", t_solve, np.abs(rho_s - ref).sum() * g.cell_volume,
             "L1 vs Gibbs")]


def t_2d_steady(n, repeat):
    import sdesim as sd

    g = sd.Grid([(-2.5, 2.5)] * 2, (n, n))
    loss = sd.Loss(WELL)
    loss.value(g.centers[:2, :2])                      # compile the loss outside the timing
    t_build, fp = best(lambda: sd.FokkerPlanck(loss, temperature=0.1, grid=g), 1)
    ref = gibbs(g, fp.potential, 0.1)
    t, rho = best(fp.steady_state, repeat)
    rows = [(f"2d-steady {n}^2", "closed form", t, np.abs(rho - ref).sum() * g.cell_volume, "L1 vs Gibbs"),
            (f"2d-steady {n}^2", "build FokkerPlanck (operator)", t_build, None, "")]
    if n <= 400:
        t, rho = best(lambda: fp.steady_state(closed_form=False), 1)
        rows.append((f"2d-steady {n}^2", "solve (SuperLU)", t, np.abs(rho - ref).sum() * g.cell_volume,
                     "L1 vs Gibbs"))
    return rows


OU_K, OU_T, OU_M0, OU_V0, OU_DT, OU_STEPS = np.array([1.0, 2.0]), 0.1, np.array([1.0, 0.5]), 0.05, 1e-3, 1000


def ou_exact(t):
    e = np.exp(-OU_K * t)
    return OU_M0 * e, OU_V0 * e**2 + OU_T / OU_K * (1 - e**2)


def moments(grid, rho):
    X, r, V = grid.centers.reshape(-1, grid.dim), rho.ravel(), grid.cell_volume
    mean = X.T @ r * V
    cov = (X.T * r) @ X * V - np.outer(mean, mean)
    return mean, cov + np.diag(grid.spacing**2 / 12)


def t_steps(method, repeat):
    import sdesim as sd

    g = sd.Grid([(-2.5, 2.5)] * 2, (400, 400))
    fp = sd.FokkerPlanck(sd.Loss("0.5*x**2 + y**2"), temperature=OU_T, grid=g)
    rho0 = g.gaussian(OU_M0, OU_V0 * np.eye(2))
    t_end = OU_STEPS * OU_DT
    t, res = best(lambda: fp.evolve(rho0, t_end, OU_DT, method=method), repeat)
    m, v = ou_exact(t_end)
    exact = g.gaussian(m, np.diag(v))
    mean, cov = moments(g, res.rho[-1])
    err = np.abs(res.rho[-1] - exact).sum() * g.cell_volume
    note = (f"L1 vs exact OU; mean err {np.abs(mean - m).max():.1e}, cov err "
            f"{np.abs(cov - np.diag(v)).max() / v.max():.1e} rel, mass err {abs(res.mass()[-1] - 1):.0e}")
    return [("1000 steps 400^2", method, t, err, note)]


def t_mfpt(repeat):
    from scipy import integrate

    import sdesim as sd

    T = 0.1
    C = lambda x: (x**2 - 1) ** 2
    inner = lambda y: integrate.quad(lambda z: np.exp(-C(z) / T), -np.inf, y, epsrel=1e-13, limit=200)[0]
    exact = integrate.quad(lambda y: np.exp(C(y) / T) * inner(y), -1.0, 1.0, epsrel=1e-12, limit=200)[0] / T
    loss, vals, rows = sd.Loss("(x**2 - 1)**2"), {}, []
    for n in (10_000, 20_000):
        g = sd.Grid([(-2.5, 2.5)], (n,))

        def run(g=g):
            fp = sd.FokkerPlanck(loss, temperature=T, grid=g)
            return np.interp(-1.0, g.axes[0], fp.mean_first_passage_time(lambda X: X[..., 0] >= 1.0))

        t, vals[n] = best(run, 3 * repeat)
        rows.append((f"mfpt-1d {n}", "direct", t, abs(vals[n] / exact - 1), "relative vs quadrature"))
    rich = (4 * vals[20_000] - vals[10_000]) / 3
    rows.append(("mfpt-1d", "Richardson 10^4/2 10^4", rows[0][2] + rows[1][2], abs(rich / exact - 1),
                 "relative vs quadrature"))
    return rows


def t_lyapunov(repeat):
    from scipy import linalg

    import sdesim as sd

    H, S = np.diag([1.0, 4.0]), np.array([[1.0, 0.6], [0.6, 1.0]])
    D = 0.05 * S
    P = linalg.solve_continuous_lyapunov(H, 2 * D)
    rows, covs = [], {}
    for n in (240, 480):
        g = sd.Grid([(-1.2, 1.2), (-0.8, 0.8)], (n, n * 2 // 3))
        fp = sd.FokkerPlanck(sd.QuadraticModel(hessian=H, noise_covariance=S), diffusion=D, grid=g)
        t, rho = best(fp.steady_state, repeat)
        covs[n] = moments(g, rho)[1]
        rows.append((f"lyapunov {n}x{n * 2 // 3}", "solve (SuperLU)", t,
                     np.abs(covs[n] - P).max() / np.abs(P).max(), "max cov err / max |P|"))
    rich = (4 * covs[480] - covs[240]) / 3
    rows.append(("lyapunov", "Richardson 240/480", rows[0][2] + rows[1][2],
                 np.abs(rich - P).max() / np.abs(P).max(), "max cov err / max |P|"))
    g = sd.Grid([(-2.5, 2.5)] * 2, (200, 200))
    fp = sd.FokkerPlanck(sd.Loss(WELL), diffusion=0.1 * np.array([[1.0, 0.8], [0.8, 1.0]]), grid=g)
    t, rho = best(fp.steady_state, repeat)
    rows.append(("aniso 0.8 200^2", "solve (SuperLU)", t, float(rho.min()), "min rho (>= 0 required)"))
    return rows


def _fplanck_model(n, potential):
    import fplanck

    if not hasattr(np, "product"):      # fplanck 0.2.2 calls np.product, removed in NumPy 2
        np.product = np.prod

    return fplanck.fokker_planck(temperature=0.1 / fplanck.k, drag=1.0, extent=[5.0, 5.0],
                                 resolution=5.0 / n, boundary=fplanck.boundary.reflecting,
                                 potential=potential)


def t_fplanck_steady(n, repeat):
    import fplanck  # noqa: F401

    C = lambda x, y: (x**2 - 1) ** 2 + 2 * y**2 + 0.5 * x * y
    t_build, sim = best(lambda: _fplanck_model(n, C), 1)
    t, p = best(sim.steady_state, repeat)
    ref = np.exp(-(C(*sim.grid) - C(*sim.grid).min()) / 0.1)
    ref /= ref.sum()
    return [(f"2d-steady {n}^2", f"fplanck (eigs; +{t_build:.2f} s build)", t, np.abs(p - ref).sum(),
             "L1 vs Gibbs (its grid)")]


def t_fplanck_steps(repeat):
    import fplanck  # noqa: F401

    sim = _fplanck_model(400, lambda x, y: 0.5 * x**2 + y**2)
    p0 = lambda x, y: np.exp(-((x - OU_M0[0]) ** 2 + (y - OU_M0[1]) ** 2) / (2 * OU_V0))
    t, p = best(lambda: sim.propagate(p0, OU_STEPS * OU_DT), 1)
    m, v = ou_exact(OU_STEPS * OU_DT)
    x, y = sim.grid
    ref = np.exp(-(x - m[0]) ** 2 / (2 * v[0]) - (y - m[1]) ** 2 / (2 * v[1]))
    return [("1000 steps 400^2", "fplanck propagate (expm_multiply to t=1)", t,
             np.abs(p / p.sum() - ref / ref.sum()).sum(), "L1 vs exact OU")]


def t_pypde_steps(solver, repeat):
    import pde

    grid = pde.CartesianGrid([[-2.5, 2.5], [-2.5, 2.5]], [400, 400])
    # div(rho grad C) + T lap rho for C = x^2/2 + y^2, zero-derivative walls (the density is ~0 there)
    eq = pde.PDE({"rho": f"{OU_T} * laplace(rho) + x * d_dx(rho) + 2 * y * d_dy(rho) + 3 * rho"},
                 bc={"derivative": 0})
    field = pde.ScalarField.from_expression(
        grid, f"exp(-((x - {OU_M0[0]})**2 + (y - {OU_M0[1]})**2) / {2 * OU_V0})")
    dt = OU_DT if solver == "implicit" else 2e-4     # explicit: stable only below h^2 / 4T = 3.9e-4
    kw = {"adaptive": False} if solver == "explicit" else {}
    t0 = time.perf_counter()
    try:
        t, out = best(lambda: eq.solve(field, t_range=OU_STEPS * OU_DT, dt=dt, solver=solver,
                                       tracker=None, **kw), 1)
    except pde.solvers.base.ConvergenceError as exc:   # py-pde's implicit Euler: a fixed-point iteration
        return [("1000 steps 400^2", f"py-pde {solver} dt={dt:g}", time.perf_counter() - t0, None,
                 f"cannot: {type(exc).__name__}: {str(exc)[:60]}")]
    m, v = ou_exact(OU_STEPS * OU_DT)
    x, y = grid.cell_coords[..., 0], grid.cell_coords[..., 1]
    ref = np.exp(-(x - m[0]) ** 2 / (2 * v[0]) - (y - m[1]) ** 2 / (2 * v[1]))
    p = out.data
    if not np.all(np.isfinite(p)):
        return [("1000 steps 400^2", f"py-pde {solver} dt={dt:g}", t, float("nan"), "diverged")]
    return [("1000 steps 400^2", f"py-pde {solver} dt={dt:g} ({round(OU_STEPS * OU_DT / dt)} steps)", t,
             np.abs(p / p.sum() - ref / ref.sum()).sum(), "L1 vs exact OU")]


NESS = {"ness-1000^2": (2, 1000), "ness-128^3": (3, 128)}


NESS_OFFDIAG = {2: 0.5, 3: 0.3}


def ness_problem(dim, n, backend="cpu"):
    """The non-equilibrium steady state of the ``--table`` loss, ``D = 0.1 (I + offdiag c)``, ``c = 0.5``
    in 2D, ``0.3`` in 3D (with ``0.5`` the 3D axis links get weight 0 and only face diagonals
    remain, which split the lattice into two parity classes: no unique steady state)."""
    import sdesim as sd

    g = sd.Grid([(-2.5, 2.5)] * dim, (n,) * dim)
    c = NESS_OFFDIAG[dim]
    D = T * ((1 - c) * np.eye(dim) + c * np.ones((dim, dim)))
    return sd.FokkerPlanck(sd.Loss(EXPR[dim]), diffusion=D, grid=g, backend=backend)


def previous_ness(fp):
    """The previous revision's solve: Ruge-Stueben AMG on the pinned system ``A`` itself, BiCGSTAB
    from ``exp(-C/T)`` (the CPU path before the Gibbs symmetrisation, timed here as the reference)."""
    import pyamg
    import scipy.sparse.linalg as spla

    from sdesim.fokker_planck import steady

    A, b = steady.pinned_system(fp.matrix(), steady.pin_cell(fp.potential))
    g = steady.reference_density(fp.potential, fp.diffusion, fp.grid.dim)
    M = pyamg.ruge_stuben_solver(A, max_coarse=500, coarse_solver="splu").aspreconditioner()
    x, _ = spla.bicgstab(A, b, x0=g, M=M, rtol=fp.tol, atol=0.0, maxiter=200)
    return fp.grid.normalize(x.reshape(fp.grid.shape)), float(np.linalg.norm(b - A @ x))


def t_ness(name, backend):
    """Steady state now (``backend``) and, on the CPU, the previous solve on the same operator."""
    from sdesim.fokker_planck import steady

    dim, n = NESS[name]
    t_build, fp = best(lambda: ness_problem(dim, n, backend), 1)
    c0 = time.process_time()
    t_new, rho = best(fp.steady_state, 1)
    c_new = time.process_time() - c0
    p = steady.pin_cell(fp.potential)
    A, b = steady.pinned_system(fp.matrix(), p)
    x = rho.ravel() / rho.flat[p]
    res = float(np.linalg.norm(b - A @ x))
    label = f"{name} ({n ** dim:,} cells)"
    rows = [(label, f"{backend}: build FokkerPlanck (operator)", t_build, None, ""),
            (label, f"{backend}: steady state ({'geometric multigrid' if backend == 'cpu' else 'device AMG'})", t_new, res,
             f"relative residual of A; process CPU time {c_new:.2f} s")]
    if backend == "cpu":
        c0 = time.process_time()
        t_old, (rho_old, res_old) = best(lambda: previous_ness(fp), 1)
        rows.append((label, "cpu: previous solve (AMG on A)", t_old, res_old,
                     f"relative residual of A; process CPU time {time.process_time() - c0:.2f} s"))
        rows.append((label, "L1 distance new / previous", 0.0, float(np.abs(rho - rho_old).sum() * fp.grid.cell_volume),
                     "L1"))
    return rows


def t_gpu_split(dim, n, steps, noise):
    """``steps`` split steps ``dt = 1e-3`` on the device (``--backend cupy``)."""
    import sdesim as sd

    g = sd.Grid([(-2.5, 2.5)] * dim, (n,) * dim)
    D = T * (np.eye(dim) if noise == "iso" else 0.5 * (np.eye(dim) + np.ones((dim, dim))))
    fp = sd.FokkerPlanck(sd.Loss(EXPR[dim]), diffusion=D, grid=g, backend="cupy")
    rho0 = g.gaussian([1.0] + [0.0] * (dim - 1), 0.05 * np.eye(dim))
    fp.evolve(rho0, 2e-3, 1e-3, method="split")                    # compile the chain kernel
    t, res = best(lambda: fp.evolve(rho0, steps * 1e-3, 1e-3, method="split"), 1)
    return [(f"{steps} split steps {n}^{dim} {noise}", "cupy", t, abs(res.mass()[-1] - 1), "mass error")]


GPU_TARGETS = {
    "ness-1000^2": lambda r: t_ness("ness-1000^2", "cupy"),
    "split-1000^2": lambda r: t_gpu_split(2, 1000, 1000, "aniso"),
    "split-256^3": lambda r: t_gpu_split(3, 256, 100, "iso"),
}

TARGETS = {
    "1d-steady": lambda r: t_1d_steady(r),
    "2d-steady-200": lambda r: t_2d_steady(200, r),
    "2d-steady-400": lambda r: t_2d_steady(400, r),
    "2d-steady-1000": lambda r: t_2d_steady(1000, r),
    "steps-split": lambda r: t_steps("split", r),
    "steps-backward-euler": lambda r: t_steps("backward-euler", 1),
    "steps-tr-bdf2": lambda r: t_steps("tr-bdf2", 1),
    "mfpt-1d": lambda r: t_mfpt(r),
    "lyapunov": lambda r: t_lyapunov(1),
    "fplanck-steady-200": lambda r: t_fplanck_steady(200, 1),
    "fplanck-steady-400": lambda r: t_fplanck_steady(400, 1),
    "fplanck-steps": lambda r: t_fplanck_steps(1),
    "pypde-steps-explicit": lambda r: t_pypde_steps("explicit", 1),
    "pypde-steps-implicit": lambda r: t_pypde_steps("implicit", 1),
    "ness-1000^2": lambda r: t_ness("ness-1000^2", "cpu"),
    "ness-128^3": lambda r: t_ness("ness-128^3", "cpu"),
}
PEERS = {"fplanck": "fplanck", "pypde": "pde"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=sorted(TARGETS | GPU_TARGETS), help="run one target case in this process")
    parser.add_argument("--only", nargs="*", help="target cases (or --table grids) to run")
    parser.add_argument("--repeat", type=int, default=3, help="timings per case (best reported)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--table", action="store_true", help="the direct / iterative / split table")
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--noise", default="iso", choices=("iso", "aniso"))
    parser.add_argument("--solver", default="auto", choices=("auto", "direct", "iterative"))
    parser.add_argument("--method", default="backward-euler", choices=("backward-euler", "split"))
    parser.add_argument("--backend", default="cpu", choices=("cpu", "cupy"),
                        help="cupy: the GPU targets (NESS 1000^2, 1000 split steps 1000^2, 100 at 256^3)")
    args = parser.parse_args()
    if args.backend == "cupy":
        from sdesim.errors import BackendUnavailableError
        from sdesim.fokker_planck.arrays import ArrayModules

        try:
            ArrayModules.cupy()
        except BackendUnavailableError as exc:
            sys.exit(f"--backend cupy: {exc}")
        targets = GPU_TARGETS
    else:
        targets = TARGETS
    if args.table:
        if args.case:
            print(json.dumps(run_case(args.case, args.noise, args.solver, args.method)))
            return
        args.only = [c for c in (args.only or sorted(CASES)) if c in CASES]
        return table_main(args)
    if args.target:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            threadpool_limits = None
        with threadpool_limits(1) if threadpool_limits else _noop():
            print(json.dumps(targets[args.target](args.repeat)))
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    print(f"# load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    print(f"{'case':18} {'method':44} {'time s':>9} {'error':>9}  measure", flush=True)
    for name in args.only or list(targets):
        peer = next((m for p, m in PEERS.items() if name.startswith(p)), None)
        if peer and importlib.util.find_spec(peer) is None:
            print(f"{name:18} {'(' + peer + ' not installed)':44}", flush=True)
            continue
        try:
            out = subprocess.run([sys.executable, __file__, "--target", name, "--repeat", str(args.repeat),
                                  "--backend", args.backend],
                                 capture_output=True, text=True, timeout=args.timeout, env=env, check=True)
            rows = json.loads(out.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            print(f"{name:18} {'did not finish in ' + str(int(args.timeout)) + ' s':44}", flush=True)
            continue
        except (subprocess.CalledProcessError, IndexError, json.JSONDecodeError) as exc:
            err = getattr(exc, "stderr", "") or ""
            print(f"{name:18} {'failed: ' + (err.strip().splitlines() or ['?'])[-1][:80]}", flush=True)
            continue
        for case, method, t, err, what in rows:
            e = "-" if err is None else f"{err:9.1e}"
            print(f"{case:18} {method:44} {t:9.4f} {e:>9}  {what}", flush=True)
    print(f"# load average at end: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
