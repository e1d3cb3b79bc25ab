r"""
# Picking the fastest available backend (GPU or CPU)

sdesim runs every simulation through a *backend*, chosen by name
(`sd.simulate(..., backend="numba")`). This version registers three: `"cupy"` (compiled
kernels on an NVIDIA GPU, one thread per particle; `pip install "sdesim[gpu]"`, see the
GPU backend page), `"numba"` (compiled kernels on the CPU, parallel over particles; the
default) and `"numpy"` (the readable reference). A backend that cannot run on this machine
(no CUDA device, CuPy not installed) raises `BackendUnavailableError` naming what to
install. This recipe asks for the fastest backend in order of preference, `cupy` first,
and falls back to the CPU, with a printed note, when it is not registered or cannot run
here. All backends draw from the same counter-based random streams, so the choice changes
the speed, not the numbers (to rounding): the recipe checks that too.

**Reference.** Nothing is reproduced here; the streams are counter-based (Philox), which
makes results independent of the hardware and of how particles are split over threads:
Salmon, Moraes, Dror & Shaw, *Parallel random numbers: as easy as 1, 2, 3* (SC 2011).
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np

import sdesim as sd

SCALE = float(os.environ.get("SDESIM_EXAMPLE_SCALE", "1"))  # < 1: smaller runs
sd.plot.use()

# %%
# What is registered here, and the first backend of the preference list that is both
# registered and available: `get_backend` raises `ConfigError` for an unknown name and
# `BackendUnavailableError` for a registered one that cannot run here (it names what to
# install).
print("registered backends:", sorted(sd.backends.REGISTRY))
PREFERENCE = ["cupy", "numba", "numpy"]                # fastest first


def pick_backend(preference):
    for name in preference:
        try:
            sd.backends.get_backend(name)
        except (sd.errors.ConfigError, sd.errors.BackendUnavailableError) as exc:
            print(f"note: backend {name!r} skipped: {exc}")
            continue
        return name
    raise RuntimeError("no backend available")


backend = pick_backend(PREFERENCE)
print(f"using backend {backend!r}")

# %%
# The same SGD ensemble on the chosen backend and on the NumPy reference (the first run of
# a compiled backend includes compiling the kernels, cached on disk; the second is timed).
loss = sd.catalog.double_well_2d().loss
n, t_end = max(200, int(20_000 * SCALE)), 5.0
dynamic = sd.SGD(0.1, 4)
steps = int(t_end / dynamic.lr)
timings, finals = {}, {}
for name in dict.fromkeys([backend, "numpy"]):
    for _ in range(2):                                   # the first run is a warm-up
        start = time.perf_counter()
        res = sd.simulate(loss, dynamic, (-1.5, 1.0), n, t_end=t_end, keep="final",
                          backend=name, seed=0)
        timings[name] = time.perf_counter() - start
    finals[name] = res.final
    print(f"{name}: {timings[name]:.3f} s for {n} particles x {steps} steps "
          f"({res.metadata['stepper']})")

fig, ax = plt.subplots(figsize=(5.0, 2.6), layout="constrained")
rates = [n * steps / timings[name] / 1e6 for name in timings]
ax.barh(list(timings), rates, color=["#0072B2", "#999999"][:len(rates)])
ax.set(xlabel="million particle-steps per second",
       title=f"SGD, {n} particles, double_well_2d")

# %%
# The measured numbers: the speed-up, and the largest difference between the final states.
if backend != "numpy":
    gap = np.nanmax(np.abs(finals[backend] - finals["numpy"]))
    speedup = timings["numpy"] / timings[backend]
    print(f"{backend} is {speedup:.1f}x faster than numpy here; "
          f"largest difference of the final states: {gap:.2g}")
