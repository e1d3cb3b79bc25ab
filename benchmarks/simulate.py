"""Throughput of ``sd.simulate`` in particle-steps per second, against NumPy, torchsde and diffrax.

Workloads (issue 3, "Performance"):

* W1: Euler-Maruyama ``SGDDiffusion(lr=0.1, batch_size=1, noise="isotropic")``
  (temperature ``T = lr / 2B = 0.05``, ``dt = lr / 10``) on
  ``(x^2 - 1)^2 + 2 y^2 + 0.5 x y``, 1e5 particles, 1e3 steps, final state only;
* W2: Euler-Maruyama ``SGDDiffusion(noise="anisotropic")`` on a 100-dimensional
  ``QuadraticModel`` (dense ``H`` with eigenvalues log-spaced in [0.01, 10] in a
  random basis, ``noise_factor`` of shape (100, 5)), 1e4 particles, 1e3 steps;
* W3: ``SGD(lr=0.01, batch_size=32, sampling="replacement")`` on the least-squares
  ``FiniteSumLoss`` ``0.5 (w . x - y)^2`` with n = 1000, d = 10, 1e3 chains, 1e3 steps.

The Numba backend runs the full size; its first call (compilation, or loading
Numba's on-disk cache) is timed separately and excluded. The NumPy backend
(a Python loop over steps) runs the same particles for fewer steps: its cost
is linear in the steps, so particle-steps per second carry over (the few
milliseconds of set-up per call favour the bigger run, i.e. the Numba one, by
well under 1%). On W1 a hand-written vectorised NumPy Euler-Maruyama loop with
``default_rng`` normals (no divergence check, its own random numbers) gives the
plain-NumPy reference of the issue. torchsde (``sdeint``, ``method="euler"``, its default Brownian
interval) and diffrax (``diffeqsolve``, ``Euler``, constant step,
``UnsafeBrownianPath``, ``jax.vmap`` over particles) run W1 and W2 in float64 on
the same particles for fewer steps, after a warm-up call of the same shapes
(JIT compilation excluded); they are skipped when not installed.

The peak host memory of one run of the timed backend is the peak of NumPy's
allocations (``tracemalloc``) during it, also as a multiple of the ensemble
(``N x dim`` doubles); a GPU backend's device memory is not in it.

Each rate is the best of ``--repeat`` runs of wall-clock time; "per CPU-s" divides
by the process CPU time of all its threads instead, i.e. the rate of one
dedicated core, which stays meaningful when other processes share the machine.
The load average is printed with every line.

GPU (``--backend cupy``, issue 10): the workloads at the GPU sizes, W1 1e7 particles
(also in float32), W2 1e6 particles, W3 1e6 chains, 1e3 steps each, ``keep="final"``
with the final state left on the device (``device_arrays=True``). A warm-up run of the
full size (kernel compilation, CuPy's memory pool) comes first; then per run the time of
its kernels alone (CUDA events around every launch, summed) and of the whole ``simulate``
call to a synchronised device (upload of ``w0``, kernels, the final losses), both as
particle-steps per second, and the bytes CuPy's memory pool held (its peak) as a multiple
of the ensemble (``N x dim`` numbers of the run's type). No peers run. Under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU) the branch runs end to end on NumPy arrays
with wall-clock times; give it a tiny ``--n``/``--steps``.

Run: ``python benchmarks/simulate.py [--repeat 3] [--only W1,W2,W3] [--no-peers] [--cold] [--backend numba]
[--n N] [--steps S]`` (``--cold``: fresh kernel caches, so the first call is a real compilation;
``--backend cupy``: the GPU kernels at the GPU sizes, on a machine with a CUDA device; ``--n``,
``--steps``: particles and steps of every workload in place of its own).
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

if "--cold" in sys.argv:  # before sdesim and numba are imported
    _cold = tempfile.mkdtemp(prefix="sdesim-bench-")
    os.environ["SDESIM_CACHE"] = _cold
    os.environ["NUMBA_CACHE_DIR"] = _cold

import sdesim as sd

W1_EXPR = "(x**2-1)**2 + 2*y**2 + 0.5*x*y"


def _load():
    return os.getloadavg()[0]


def measure(fn, units, repeat):
    """Best-of-``repeat`` ``(units / wall s, units / CPU s, load)`` of ``fn()``."""
    wall = cpu = np.inf
    load = _load()
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
        load = max(load, _load())
    return units / wall, units / cpu, load


def peak_memory(fn):
    """Peak bytes of NumPy allocations (``tracemalloc``) during ``fn()``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def first_call(fn):
    """Seconds of ``fn()`` (the first call: compilation or cache load)."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --- workloads ------------------------------------------------------------------------
def w1():
    loss = sd.Loss(W1_EXPR)
    dyn = sd.SGDDiffusion(lr=0.1, batch_size=1, noise_scale=1.0)
    return {"name": "W1", "title": "EM, isotropic SDE (T = 0.05) on a 2-D non-convex loss",
                "loss": loss, "dyn": dyn, "w0": np.array([-1.0, 0.0]), "n": 100_000, "steps": 1000,
                "numpy_steps": 50, "peer_steps": 100}


def w2():
    rng = np.random.default_rng(0)
    dim, r = 100, 5
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    H = (basis * np.logspace(-2, 1, dim)) @ basis.T
    H = 0.5 * (H + H.T)
    F = rng.normal(size=(dim, r)) / np.sqrt(dim)
    model = sd.QuadraticModel(hessian=H, noise_factor=F, w_star=rng.normal(size=dim))
    dyn = sd.SGDDiffusion(lr=0.1, batch_size=1, noise="anisotropic")
    return {"name": "W2", "title": "EM, 100-D quadratic model, rank-5 anisotropic noise",
                "loss": model, "dyn": dyn, "w0": np.zeros(dim), "n": 10_000, "steps": 1000,
                "numpy_steps": 20, "peer_steps": 100, "H": H, "F": F}


def w3():
    rng = np.random.default_rng(0)
    n, d = 1000, 10
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    expr = "0.5*(" + " + ".join(f"w{i}*x{i}" for i in range(d)) + " - y)**2"
    loss = sd.FiniteSumLoss(expr, params=tuple(f"w{i}" for i in range(d)), data={"x": X, "y": Y})
    dyn = sd.SGD(lr=0.01, batch_size=32, sampling="replacement")
    return {"name": "W3", "title": "SGD with replacement, least squares n=1000 d=10 B=32",
                "loss": loss, "dyn": dyn, "w0": np.zeros(d), "n": 1000, "steps": 1000,
                "numpy_steps": 50, "peer_steps": 0}


GPU_SIZES = {"W1": 10_000_000, "W2": 1_000_000, "W3": 1_000_000}
"""Particles (chains) of each workload on the GPU (issue 10's targets), 1e3 steps each."""


def run_sdesim(w, backend, n, steps, seed=0, **kw):
    if w["dyn"].continuous:
        kw["dt"] = w["dyn"].lr / 10
    return sd.simulate(w["loss"], w["dyn"], w["w0"], n, steps=steps, record_every=steps,
                       backend=backend, seed=seed, progress=False, **kw)


def plain_numpy_w1(w, n, steps):
    """W1 as a hand-written vectorised NumPy loop with ``default_rng`` normals (no divergence check)."""
    dyn = w["dyn"]
    dt = dyn.lr / 10
    scale = np.sqrt(dyn.lr * dyn.noise_scale / dyn.batch_size * dt)
    gen = np.random.default_rng(0)
    x = np.full(n, w["w0"][0])
    y = np.full(n, w["w0"][1])
    for _ in range(steps):
        z = gen.standard_normal((2, n))
        fx = -(4 * x * (x * x - 1) + 0.5 * y)
        fy = -(0.5 * x + 4 * y)
        x = x + dt * fx + scale * z[0]
        y = y + dt * fy + scale * z[1]
    return x, y


# --- peers ----------------------------------------------------------------------------
def torchsde_runner(w, n, steps):
    """A function running ``steps`` Euler steps of the workload in torchsde, or None."""
    try:
        import torch
        import torchsde
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    dyn = w["dyn"]
    dt = dyn.lr / 10
    sigma = float(np.sqrt(dyn.lr * dyn.noise_scale / dyn.batch_size))
    if w["name"] == "W1":
        class SDE(torch.nn.Module):
            noise_type, sde_type = "diagonal", "ito"

            def f(self, t, y):
                x, z = y[:, 0], y[:, 1]
                return torch.stack([-(4 * x * (x * x - 1) + 0.5 * z), -(0.5 * x + 4 * z)], dim=1)

            def g(self, t, y):
                return torch.full_like(y, sigma)

        y0 = torch.tensor(np.broadcast_to(w["w0"], (n, 2)).copy(), dtype=torch.float64)
    else:
        H = torch.tensor(w["H"], dtype=torch.float64)
        G = sigma * torch.tensor(w["F"], dtype=torch.float64)
        w_star = torch.tensor(np.asarray(w["loss"].w_star), dtype=torch.float64)

        class SDE(torch.nn.Module):
            noise_type, sde_type = "general", "ito"

            def f(self, t, y):
                return -(y - w_star) @ H  # H symmetric

            def g(self, t, y):
                return G.expand(y.shape[0], *G.shape)

        y0 = torch.tensor(np.broadcast_to(w["w0"], (n, w["w0"].size)).copy(), dtype=torch.float64)
    sde = SDE()
    ts = torch.tensor([0.0, steps * dt], dtype=torch.float64)

    def run():
        with torch.no_grad():
            return torchsde.sdeint(sde, y0, ts, method="euler", dt=dt)[-1]
    return run


def diffrax_runner(w, n, steps):
    """A function running ``steps`` Euler steps of the workload in diffrax, or None."""
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import diffrax
        import jax.numpy as jnp
        import lineax
    except ImportError:
        return None
    dyn = w["dyn"]
    dt = dyn.lr / 10
    sigma = float(np.sqrt(dyn.lr * dyn.noise_scale / dyn.batch_size))
    dim = w["w0"].size
    if w["name"] == "W1":
        def drift(t, y, args):
            x, z = y[0], y[1]
            return jnp.stack([-(4 * x * (x * x - 1) + 0.5 * z), -(0.5 * x + 4 * z)])

        def diffusion(t, y, args):
            return lineax.DiagonalLinearOperator(jnp.full((2,), sigma))
        noise_shape = (2,)
    else:
        H = jnp.asarray(w["H"])
        G = sigma * jnp.asarray(w["F"])
        w_star = jnp.asarray(np.asarray(w["loss"].w_star))

        def drift(t, y, args):
            return -H @ (y - w_star)

        def diffusion(t, y, args):
            return G
        noise_shape = (G.shape[1],)

    def one(y0, key):
        bm = diffrax.UnsafeBrownianPath(shape=noise_shape, key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, steps * dt, dt, y0,
                                  saveat=diffrax.SaveAt(t1=True), max_steps=steps + 8,
                                  adjoint=diffrax.ForwardMode())  # no gradients wanted
        return sol.ys[-1]

    solve = jax.jit(jax.vmap(one))
    y0 = jnp.asarray(np.broadcast_to(w["w0"], (n, dim)).copy())
    keys = jax.random.split(jax.random.PRNGKey(0), n)

    def run():
        return solve(y0, keys).block_until_ready()
    return run


# --- report ---------------------------------------------------------------------------
def line(label, size, rates, ratio=None, ours="numba"):
    wall, cpu, load = rates
    tail = f"  {ours}/this {ratio:6.1f}x" if ratio is not None else ""
    print(f"  {label:20s} {size:22s} {wall:10.3e} /s   {cpu:10.3e} /CPU-s   load {load:4.1f}{tail}")


def bench(w, repeat, peers, backend="numba"):
    n, steps = w["n"], w["steps"]
    print(f"{w['name']}: {w['title']}; {n:.0e} particles x {steps:.0e} steps")
    t_first = first_call(lambda: run_sdesim(w, backend, 64, 2))
    print(f"  {backend} first call (compile or cache load, 64 particles x 2 steps): {t_first:.2f} s")
    ours = measure(lambda: run_sdesim(w, backend, n, steps), n * steps, repeat)
    line(f"sdesim {backend}", f"N={n:.0e} S={steps:.0e}", ours)
    peak = peak_memory(lambda: run_sdesim(w, backend, n, steps))
    print(f"  {'':20s} peak host memory {peak / 2**20:.1f} MiB = {peak / (n * w['w0'].size * 8):.2f} x the ensemble")
    results = {backend: ours}
    ns = w["numpy_steps"]
    run_sdesim(w, "numpy", 64, 2)
    theirs = measure(lambda: run_sdesim(w, "numpy", n, ns), n * ns, max(1, repeat - 1))
    results["numpy"] = theirs
    line("sdesim numpy", f"N={n:.0e} S={ns} (scaled)", theirs, ours[0] / theirs[0], backend)
    if w["name"] == "W1":
        plain = measure(lambda: plain_numpy_w1(w, n, ns), n * ns, max(1, repeat - 1))
        results["plain numpy"] = plain
        line("plain NumPy EM", f"N={n:.0e} S={ns} (scaled)", plain, ours[0] / plain[0], backend)
    if peers and w["peer_steps"]:
        ps = w["peer_steps"]
        for name, make in (("torchsde", torchsde_runner), ("diffrax", diffrax_runner)):
            try:
                run = make(w, n, ps)
                t_jit = run and first_call(run)
            except Exception as exc:  # noqa: BLE001 (a peer's API change must not stop the benchmark)
                print(f"  {name:20s} failed: {exc!r}"[:300])
                continue
            if run is None:
                print(f"  {name:20s} not installed")
                continue
            rates = measure(run, n * ps, max(1, repeat - 1))
            results[name] = rates
            line(name, f"N={n:.0e} S={ps} (scaled)", rates, ours[0] / rates[0], backend)
            print(f"  {'':20s} (first call incl. JIT/tracing: {t_jit:.2f} s)")
    return results


# --- GPU ------------------------------------------------------------------------------
class KernelClock:
    """Seconds the cupy backend's kernels run: CUDA events around every launch (wall clock under the simulator)."""

    def __init__(self, xp):
        from sdesim.backends import cupy_backend
        self.launch, self.xp, self.seconds = cupy_backend._Launch, xp, 0.0
        self.original = self.launch.__call__

    def __enter__(self):
        clock, original = self, self.original

        def timed(launch, kernel, *args):
            if clock.xp is np:
                t = time.perf_counter()
                original(launch, kernel, *args)
                clock.seconds += time.perf_counter() - t
                return
            start, stop = clock.xp.cuda.Event(), clock.xp.cuda.Event()
            start.record()
            original(launch, kernel, *args)
            stop.record()
            stop.synchronize()
            clock.seconds += clock.xp.cuda.get_elapsed_time(start, stop) / 1e3
        self.launch.__call__ = timed
        return self

    def __exit__(self, *exc):
        self.launch.__call__ = self.original


def _synchronize(xp):
    if xp is not np:
        xp.cuda.Device().synchronize()


def bench_gpu(w, repeat, n, steps, dtype="float64"):
    """Best-of-``repeat`` kernel and end-to-end rates of ``w`` on the cupy backend after a full-size warm-up."""
    backend = sd.backends.get_backend("cupy")
    xp = backend.xp
    pool = None if xp is np else xp.get_default_memory_pool()
    tag = "" if dtype == "float64" else f" ({dtype})"
    print(f"{w['name']}{tag}: {w['title']}; {n:.0e} particles x {steps:.0e} steps, keep='final' on the device")

    def run():
        res = run_sdesim(w, "cupy", n, steps, keep="final", device_arrays=True, dtype=dtype)
        _synchronize(xp)
        return res
    print(f"  cupy warm-up (compile, memory pool, full size): {first_call(run):.2f} s")
    kernels = wall = np.inf
    held = 0
    for _ in range(repeat):
        if pool is not None:
            pool.free_all_blocks()
        with KernelClock(xp) as clock:
            t = time.perf_counter()
            run()
            wall = min(wall, time.perf_counter() - t)
        kernels = min(kernels, clock.seconds)
        held = max(held, 0 if pool is None else pool.total_bytes())
    units = n * steps
    print(f"  {'kernels':20s} {units / kernels:10.3e} particle-steps/s   ({kernels:.3f} s)")
    print(f"  {'simulate call':20s} {units / wall:10.3e} particle-steps/s   ({wall:.3f} s)   load {_load():4.1f}")
    if pool is not None:
        ensemble = n * w["w0"].size * np.dtype(dtype).itemsize
        print(f"  {'':20s} device memory pool peak {held / 2**20:.1f} MiB = {held / ensemble:.2f} x the ensemble")


def main_gpu(args):
    backend = sd.backends.get_backend("cupy")
    if backend.xp is np:
        print("Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): no GPU, times are of the simulator")
    else:
        props = backend.xp.cuda.runtime.getDeviceProperties(backend.xp.cuda.Device().id)
        print(f"{props['name'].decode()}, cupy {backend.xp.__version__}, load average {_load():.2f}")
    for name in args.only.split(","):
        name = name.strip()
        w = {"W1": w1, "W2": w2, "W3": w3}[name]()
        n, steps = args.n or GPU_SIZES[name], args.steps or w["steps"]
        bench_gpu(w, args.repeat, n, steps)
        if name == "W1":
            bench_gpu(w, args.repeat, n, steps, dtype="float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="W1,W2,W3")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--cold", action="store_true", help="fresh kernel caches (real compile times)")
    parser.add_argument("--backend", default="numba", help="the sdesim backend to time (cupy: on a GPU)")
    parser.add_argument("--n", type=int, help="particles of every workload (default: its own; the GPU sizes on cupy)")
    parser.add_argument("--steps", type=int, help="steps of every workload (default: its own)")
    args = parser.parse_args()
    try:
        sd.backends.get_backend(args.backend)
    except (sd.errors.ConfigError, sd.errors.BackendUnavailableError) as exc:
        parser.error(str(exc))
    if args.backend == "cupy":
        main_gpu(args)
        return
    import numba
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    print(f"{os.cpu_count()} CPUs, numba {numba.__version__} with {numba.get_num_threads()} threads, "
          f"AVX-512: {'avx512f' in flags}, numpy {np.__version__}, load average {_load():.2f}")
    print(f"  {'':20s} {'size':22s} {'wall rate':>13s}   {'per CPU-s':>17s}")
    for name in args.only.split(","):
        w = {"W1": w1, "W2": w2, "W3": w3}[name.strip()]()
        w["n"], w["steps"] = args.n or w["n"], args.steps or w["steps"]
        bench(w, args.repeat, not args.no_peers, args.backend)


if __name__ == "__main__":
    main()
