"""Fokker-Planck benchmark: steady state and 100 implicit steps, direct vs iterative.

Run ``python benchmarks/fokker_planck.py`` (all cases) or ``--case NAME --noise N
--solver S`` (one case in this process). Every case runs in a fresh subprocess so
that its peak resident memory is its own. Loss: the 2D/3D tilted double well
``(x^2-1)^2 + 2 y^2 + 0.5 x y (+ z^2 + 0.3 x z)`` on ``[-2.5, 2.5]^d``; noise
``iso``: ``D = 0.1 I`` (accuracy: L1 distance of the steady state to Gibbs);
``aniso``: ``D = 0.1 (I + 0.5 offdiag)`` (non-equilibrium; no closed form, and the
iterative steady state does not start from the answer). Steps: backward Euler,
``dt = 0.01``, from a Gaussian at ``(1, 0, ...)``; rows ``split`` time the
directional-splitting stepper (``method="split"``, tridiagonal solves) instead,
next to the steady state by the direct solver.
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--noise", default="iso", choices=("iso", "aniso"))
    parser.add_argument("--solver", default="auto", choices=("auto", "direct", "iterative"))
    parser.add_argument("--method", default="backward-euler", choices=("backward-euler", "split"))
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), default=sorted(CASES),
                        help="grids to run in the full table")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.noise, args.solver, args.method)))
        return
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
            out = subprocess.run([sys.executable, __file__, "--case", case, "--noise", noise,
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


if __name__ == "__main__":
    main()
