"""Worker process for ``test_cupy_backend.py``: the GPU kernels under Numba's CUDA simulator.

Run with ``NUMBA_ENABLE_CUDASIM=1`` (set before ``numba.cuda`` is first imported, hence a
process of its own), or without it on a machine with a GPU: every case of :func:`cases` runs
on the NumPy reference, the Numba backend and the ``"cupy"`` backend with several launch
configurations (threads per block), one segmented run and one run in float32, and the
worker prints one JSON object: per case the declared support and, when compiled, the
largest difference of the recorded states from the reference and from the Numba backend
(NaN where the other has NaN counts as equal, NaN elsewhere as infinite), the largest
relative difference of the float32 run (``|w32 - w| / max(1, |w|)``) and whether the
divergence steps agree.

Run as a script: ``NUMBA_ENABLE_CUDASIM=1 python tests/_cuda_worker.py [case ...]``.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np

THREADS = (4, 32)          # 12 particles: three blocks of 4, or one block with idle threads
N, STEPS = 12, 24
SAMPLED = 8               # the cases slow under the simulator (finite sums, top-k models): 8 steps
SAMPLED_T = SAMPLED * 0.005   # 8 SDE steps of dt = lr / 10


def losses():
    import sdesim as sd
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = 0.7 * x + 0.3 * rng.normal(size=12)
    lam, q = np.linalg.eigh(np.array([[2.0, 0.3, 0.1], [0.3, 0.5, 0.0], [0.1, 0.0, 1.0]]))
    return {
        "sym": sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y"),
        "tilt": sd.Loss("(x**2 - 1)**2 + c*x", c=lambda t: 0.5 * np.sin(4 * t)),
        "fs": sd.FiniteSumLoss("0.5*(a*x - y)**2 + 0.1*b**2*(a - 1)**2 + 0.5*(b - y)**2",
                               params=("a", "b"), data={"x": x, "y": y}),
        "qm": sd.QuadraticModel(hessian=[[2.0, 0.3], [0.3, 0.5]], noise_covariance=[[1.0, 0.4], [0.4, 0.6]],
                                w_star=[0.1, -0.2]),
        "qm_topk": sd.QuadraticModel(hessian_eigenvalues=lam[1:], hessian_eigenvectors=q[:, 1:],
                                     hessian_rest=0.2, noise_covariance=np.diag([0.5, 1.0, 0.3]),
                                     w_star=[0.1, -0.2, 0.3]),
    }


def cases():
    """``name -> (loss, dynamic, simulate keywords)``."""
    import sdesim as sd
    S = sd.schedules
    sde = {"lr": 0.05, "batch_size": 3}
    c = {
        "sym-gd": ("sym", sd.GD(lr=0.05), {}),
        "sym-gd-warmup": ("sym", sd.GD(lr=0.05, schedule=S.WarmUp(t_warmup=0.5)), {}),
        "sym-sgd": ("sym", sd.SGD(lr=0.05, batch_size=3), {}),
        "sym-sgd-cosine": ("sym", sd.SGD(lr=0.05, batch_size=3, schedule=S.Cosine(t_total=1.0, final=0.1)), {}),
        "sym-sgd-matrix": ("sym", sd.SGD(lr=0.05, batch_size=3, noise_covariance=[[1.0, 0.3], [0.3, 0.5]]), {}),
        "sym-sgd-factor": ("sym", sd.SGD(lr=0.05, batch_size=3, noise_factor=[[1.0], [0.5]]), {}),
        "sym-momentum": ("sym", sd.SGD(lr=0.05, batch_size=3, momentum=0.9), {}),
        "sym-nesterov": ("sym", sd.SGD(lr=0.05, batch_size=3, momentum=0.9, nesterov=True), {}),
        "sym-sde-iso": ("sym", sd.SGDDiffusion(lr=0.05, batch_size=3, noise_scale=2.0), {}),
        "sym-sde-aniso": ("sym", sd.SGDDiffusion(noise="anisotropic", **sde), {}),
        "sym-sde-matrix": ("sym", sd.SGDDiffusion(noise="anisotropic", noise_covariance=[[1.0, 0.3], [0.3, 0.5]],
                                                  **sde), {}),
        "sym-heun": ("sym", sd.SGDDiffusion(**sde), {"integrator": "heun"}),
        "sym-weak2": ("sym", sd.SGDDiffusion(**sde), {"integrator": "weak2"}),
        "sym-sde-cyclic": ("sym", sd.SGDDiffusion(schedule=S.Cyclic(period=0.1), **sde), {}),
        "sym-modified": ("sym", sd.SGDDiffusion(modified=True, **sde), {}),
        "tilt-momentum": ("tilt", sd.SGD(lr=0.05, batch_size=2, momentum=0.5), {"w0": (0.3,)}),
        "tilt-heun-modified-cyclic": ("tilt", sd.SGDDiffusion(lr=0.05, batch_size=2, modified=True,
                                                             schedule=S.Cyclic(period=0.3)),
                                      {"w0": (0.3,), "integrator": "heun"}),
        "sym-gd-diverges": ("sym", sd.GD(lr=0.2), {"w0": np.c_[np.linspace(0.5, 3.0, N), np.full(N, 0.3)],
                                                   "bound": 1e3}),           # 5 of 12 diverge
        "sym-sde-diverges": ("sym", sd.SGDDiffusion(lr=0.7, batch_size=1, noise_scale=50.0), {"bound": 5.0}),
        "qm-gd": ("qm", sd.GD(lr=0.05), {}),
        "qm-sgd": ("qm", sd.SGD(lr=0.05, batch_size=3), {}),
        "qm-momentum": ("qm", sd.SGD(lr=0.05, batch_size=3, momentum=0.9), {}),
        "qm-nesterov": ("qm", sd.SGD(lr=0.05, batch_size=3, momentum=0.9, nesterov=True), {}),
        "qm-nudged": ("qm", sd.SGD(lr=0.05, batch_size=3, nudge_k=1, nudge_factor=0.3), {}),
        "qm-sde-euler": ("qm", sd.SGDDiffusion(noise="anisotropic", **sde), {}),
        "qm-heun": ("qm", sd.SGDDiffusion(**sde), {"integrator": "heun"}),
        "qm-weak2": ("qm", sd.SGDDiffusion(noise="anisotropic", **sde), {"integrator": "weak2"}),
        "qm-exact-ou": ("qm", sd.SGDDiffusion(noise="anisotropic", schedule=S.Step(every=0.05, factor=0.5), **sde),
                        {"integrator": "exact_ou"}),
        "qm-topk-sgd": ("qm_topk", sd.SGD(lr=0.05, batch_size=3), {"w0": (0.5, 0.3, -0.2), "steps": SAMPLED}),
        "qm-topk-sde": ("qm_topk", sd.SGDDiffusion(noise="anisotropic", **sde), {"w0": (0.5, 0.3, -0.2),
                                                                                  "t_end": SAMPLED_T}),
        "qm-diverges": ("qm", sd.SGD(lr=3.0, batch_size=1), {"bound": 50.0}),
        "fs-gd": ("fs", sd.GD(lr=0.05), {}),
        "fs-sgd": ("fs", sd.SGD(lr=0.05, batch_size=3), {"steps": SAMPLED}),
        "fs-sgd-shuffle": ("fs", sd.SGD(lr=0.05, batch_size=3, sampling="shuffle"), {"steps": SAMPLED}),
        "fs-sgd-shuffle-5": ("fs", sd.SGD(lr=0.05, batch_size=5, sampling="shuffle"), {"steps": SAMPLED}),
        "fs-sgd-fixed": ("fs", sd.SGD(lr=0.05, batch_size=3, sampling="fixed"), {"steps": SAMPLED}),
        "fs-momentum": ("fs", sd.SGD(lr=0.05, batch_size=3, momentum=0.9), {"steps": SAMPLED}),
        "fs-nesterov-shuffle": ("fs", sd.SGD(lr=0.05, batch_size=4, momentum=0.9, nesterov=True,
                                            sampling="shuffle"), {"steps": SAMPLED}),
        "fs-sde-iso": ("fs", sd.SGDDiffusion(noise_scale=2.0, **sde), {"t_end": SAMPLED_T}),
        "fs-heun": ("fs", sd.SGDDiffusion(**sde), {"integrator": "heun", "t_end": SAMPLED_T}),
        "fs-weak2": ("fs", sd.SGDDiffusion(**sde), {"integrator": "weak2", "t_end": SAMPLED_T}),
        "fs-sgd-diverges": ("fs", sd.SGD(lr=3.0, batch_size=2), {"bound": 1e3}),
        "sym-flow-rk4": ("sym", sd.GradientFlow(), {"t_end": 0.24, "dt": 0.01, "integrator": "rk4"}),
        "sym-modified-flow-rk4": ("sym", sd.ModifiedFlow(lr=0.05, order=2), {"integrator": "rk4"}),
        "tilt-flow-rk4": ("tilt", sd.GradientFlow(), {"t_end": 0.24, "dt": 0.01, "integrator": "rk4", "w0": (0.3,)}),
        "sym-flow-rk4-diverges": ("sym", sd.GradientFlow(), {"t_end": 1.2, "dt": 0.05, "integrator": "rk4",
                                                             "w0": np.c_[np.linspace(0.5, 4.0, N), np.full(N, 0.3)],
                                                             "bound": 1e3}),     # RK4 unstable where h H > 2.8
        "qm-flow-rk4": ("qm", sd.GradientFlow(), {"t_end": 0.24, "dt": 0.01, "integrator": "rk4"}),
        "qm-modified-flow-rk4": ("qm", sd.ModifiedFlow(lr=0.05, order=3), {"integrator": "rk4"}),
        "qm-topk-flow-rk4": ("qm_topk", sd.GradientFlow(), {"t_end": 0.24, "dt": 0.01, "integrator": "rk4",
                                                            "w0": (0.5, 0.3, -0.2)}),
        # declared unsupported
        "sym-hessian-noise": ("sym", sd.SGD(lr=0.05, batch_size=3, noise_covariance="hessian"), {}),
        "sym-nudged": ("sym", sd.SGD(lr=0.05, batch_size=3, nudge_k=1, nudge_factor=0.3), {}),
        "sym-lowrank": ("sym", sd.SGDDiffusion(noise="lowrank", rank=1, **sde), {}),
        "sym-milstein": ("sym", sd.SGDDiffusion(**sde), {"integrator": "milstein"}),
        "sym-flow": ("sym", sd.GradientFlow(), {"t_end": 0.1, "dt": 0.01}),
        "fs-flow-rk4": ("fs", sd.GradientFlow(), {"t_end": 0.1, "dt": 0.01, "integrator": "rk4"}),
        "fs-sde-aniso": ("fs", sd.SGDDiffusion(noise="anisotropic", **sde), {}),
        "qm-modified": ("qm", sd.SGDDiffusion(noise="anisotropic", modified=True, **sde), {}),
    }
    return c


def settings(dyn, kw):
    kw = dict(kw)
    w0 = np.asarray(kw.pop("w0", (0.5, 0.3)), float)
    if dyn.continuous:
        kw.setdefault("t_end", STEPS * dyn.lr / 10 if getattr(dyn, "lr", None) else 0.1)
    else:
        kw.setdefault("steps", STEPS)
    return dict(w0=w0, n_particles=N, record_every=5, seed=3, on_divergence="ignore", **kw)


def compare(a, b):
    """Largest ``|a - b|``; NaN in both counts as equal, NaN in one as infinite."""
    both = np.isnan(a) & np.isnan(b)
    if (np.isnan(a) != np.isnan(b)).any():
        return float("inf")
    diff = np.abs(np.where(both, 0.0, a - b))
    return float(diff.max(initial=0.0))


def run_case(loss, dyn, kw):
    import sdesim as sd
    from sdesim.backends import get_backend
    from sdesim.plan import resolve
    s = settings(dyn, kw)
    gpu = get_backend("cupy")
    plan = resolve(loss, dyn, s["n_particles"], s.get("steps"), s.get("t_end"), s.get("dt"), s["seed"],
                   s.get("integrator"), s.get("bound", 1e8))
    support = gpu.support(plan)
    out = {"level": support.level, "reason": support.reason}
    if support.level != "compiled":
        try:
            sd.simulate(loss, dyn, backend="cupy", **s)
        except sd.errors.UnsupportedError as exc:
            out["raised"] = str(exc)
        return out
    ref = sd.simulate(loss, dyn, backend="numpy", **s)
    cpu = sd.simulate(loss, dyn, backend="numba", **s)
    errors, diverged, from_cpu = [], [], []
    from sdesim.backends import cupy_backend
    rows = cupy_backend.ROWS
    runs = [(threads, None, rows) for threads in THREADS] + [(THREADS[0], 7, 5)]
    for threads, segment, cupy_backend.ROWS in runs:     # last: segments, and host-side blocks of 5 particles
        gpu.threads = threads
        res = sd.simulate(loss, dyn, backend="cupy", segment_steps=segment, **s)
        errors.append(compare(res.w, ref.w))
        from_cpu.append(compare(res.w, cpu.w))
        diverged.append(bool(np.array_equal(np.asarray(res.diverged_at), ref.diverged_at)))
    gpu.threads, cupy_backend.ROWS = THREADS[0], rows
    f32 = sd.simulate(loss, dyn, backend="cupy", dtype="float32", **s)
    ok = np.isfinite(ref.w)
    f32_error = float(np.max(np.abs(f32.w - ref.w)[ok] / np.maximum(1.0, np.abs(ref.w[ok])), initial=0.0))
    out.update(float32_error=f32_error, float32_diverged_agree=bool(np.array_equal(f32.diverged_at,
                                                                                  ref.diverged_at)))
    out.update(stepper=res.metadata["stepper"], errors=errors, from_numba=from_cpu, diverged_agree=diverged,
               n_diverged=int((ref.diverged_at >= 0).sum()), moved=float(np.nanmax(np.abs(ref.w[-1] - ref.w[0]))))
    return out


def main(names):
    warnings.simplefilter("ignore")
    L, C = losses(), cases()
    report = {}
    for name in names or C:
        loss, dyn, kw = C[name]
        try:
            report[name] = run_case(L[loss], dyn, kw)
        except Exception as exc:  # noqa: BLE001 (reported: the test names the case)
            report[name] = {"level": "error", "reason": f"{type(exc).__name__}: {exc}"}
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
