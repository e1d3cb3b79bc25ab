"""Cost of the NumPy MLP: SGD step at P ~ 10k, B = 32, HVP and modified-flow costs relative to a gradient.

Run ``python benchmarks/nets.py [--json out.json]``. Timings are medians over
repeats of blocks (robust to other load on the machine); the net is
``MLP((40, 100, 60, 10), "tanh")`` on MNIST-1D-shaped data (P = 10,770).
The modified-flow lines take the shipped ``digits_mlp`` (64-100-10, 1438 samples) at its
minimum: one evaluation of ``NetworkLoss.modified_gradient`` of order 1 (``g + lr/2 H g``,
fused), of order 1 from separate ``grad`` and ``hvp`` passes, and of order 2, over one
full-batch gradient; the functions run interleaved and each ratio is of the fastest blocks
(what the load adds is never negative), with the default BLAS threads and with one.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sdesim.analysis.lanczos import lanczos
from sdesim.nets import MLP, NetworkLoss
from sdesim.nets.loading import load_extraction
from sdesim.nets.objective import MLPObjective, Objective


def _ms(f, number, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        times.append((time.perf_counter() - t0) / number)
    return 1e3 * float(np.median(times))


def _cost_over_grad(fs, number=5, repeat=30):
    """Fastest block of each function (run interleaved) over the fastest block of ``fs["grad"]``."""
    best = dict.fromkeys(fs, np.inf)
    for f in fs.values():
        f()
    for _ in range(repeat):
        for key, f in fs.items():
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            best[key] = min(best[key], (time.perf_counter() - t0) / number)
    return {key: best[key] / best["grad"] for key in fs if key != "grad"}


def modified_flow_costs():
    """Order-1 (fused and separate passes) and order-2 modified drifts over a gradient, digits_mlp."""
    ext, net, data = load_extraction("digits_mlp")
    obj = MLPObjective(net, data.x, data.y)
    loss, w = NetworkLoss(obj), ext.w_star
    fs = {"grad": lambda: obj.grad(w),
          "modified1_over_grad": lambda: loss.modified_gradient(w, 0.1, 1),
          "modified1_separate_passes_over_grad": lambda: Objective.grad_and_hvp(obj, w),
          "modified2_over_grad": lambda: loss.modified_gradient(w, 0.1, 2)}
    out = {f"digits_mlp_{k}": v for k, v in _cost_over_grad(fs).items()}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return out
    with threadpool_limits(1, user_api="blas"):
        out.update({f"digits_mlp_{k}_1thread": v for k, v in _cost_over_grad(fs).items()})
    return out


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
    out.update(modified_flow_costs())

    width = max(map(len, out))
    for key, value in out.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
