"""Cost of the NumPy MLP: SGD step at P ~ 10k, B = 32, and HVP cost relative to a gradient.

Run ``python benchmarks/nets.py [--json out.json]``. Timings are medians over
repeats of blocks (robust to other load on the machine); the net is
``MLP((40, 100, 60, 10), "tanh")`` on MNIST-1D-shaped data (P = 10,770).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sdesim.analysis.lanczos import lanczos
from sdesim.nets import MLP


def _ms(f, number, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        times.append((time.perf_counter() - t0) / number)
    return 1e3 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    n, B = 4000, 32
    net = MLP((40, 100, 60, 10), activation="tanh")
    X, Y = rng.standard_normal((n, 40)), rng.integers(0, 10, n)
    w = net.init(0)
    v = rng.standard_normal(net.n_params)
    state = {"w": w.copy()}

    def sgd_step():
        idx = rng.integers(0, n, B)
        state["w"] -= 0.1 * net.grad(state["w"], X[idx], Y[idx])

    xb, yb = X[:B], Y[:B]
    out = {"n_params": net.n_params, "batch_size": B, "n_train": n}
    out["sgd_step_ms"] = _ms(sgd_step, 500)
    out["grad_ms_B32"] = _ms(lambda: net.grad(w, xb, yb), 500)
    out["hvp_ms_B32"] = _ms(lambda: net.hvp(w, xb, yb, v), 500)
    out["per_sample_grads_ms_B32"] = _ms(lambda: net.per_sample_grads(w, xb, yb), 100)
    out["grad_ms_full"] = _ms(lambda: net.grad(w, X, Y), 5)
    out["hvp_ms_full"] = _ms(lambda: net.hvp(w, X, Y, v), 5)
    out["hvp_over_grad_B32"] = out["hvp_ms_B32"] / out["grad_ms_B32"]
    out["hvp_over_grad_full"] = out["hvp_ms_full"] / out["grad_ms_full"]
    J = net.sample_jacobian(w, X, Y)
    out["covariance_matvec_ms_full"] = _ms(lambda: J.covariance_matvec(v), 5)
    t0 = time.perf_counter()
    lanczos(lambda u: net.hvp(w, X, Y, u), net.n_params, k=10, tol=1e-6)
    out["lanczos_top10_hessian_s_full"] = time.perf_counter() - t0

    width = max(map(len, out))
    for key, value in out.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
