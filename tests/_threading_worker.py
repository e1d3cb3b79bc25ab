"""Run by tests/test_threading.py in a fresh process: sdesim's Numba parallel kernel first, then
PyTorch (imported after it, as in a script that simulates and then trains); a CNN Hessian-vector
product timed with torch on 2 threads and on 1 thread (its OpenMP team unused). Prints
``{"layer": ..., "two_threads": s, "one_thread": s}`` as JSON."""

import json
import time

import numpy as np

import sdesim as sd  # configures Numba's threading layer before any kernel


def kernel():
    sd.simulate(sd.Loss("(x**2-1)**2 + 2*y**2"), sd.SGDDiffusion(lr=0.1, batch_size=1), np.array([-1.0, 0.0]),
                4000, steps=200, dt=0.01, backend="numba", seed=0, progress=False)


def main():
    kernel()
    import torch

    from sdesim.nets.cnn import mnist1d_cnn
    from sdesim.nets.torch_adapter import TorchObjective

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((500, 40)), rng.integers(0, 10, 500)
    obj = TorchObjective(mnist1d_cnn(), x, y, torch.nn.functional.cross_entropy)
    w, v = obj.flat(), rng.standard_normal(obj.n_params)

    def hvp_seconds(threads):
        torch.set_num_threads(threads)
        obj.hvp(w, v)
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            obj.hvp(w, v)
            best = min(best, time.perf_counter() - t)
        return best

    two = hvp_seconds(2)
    kernel()
    two = min(two, hvp_seconds(2))
    import numba
    print(json.dumps({"layer": numba.threading_layer(), "two_threads": two, "one_thread": hvp_seconds(1)}))


if __name__ == "__main__":
    main()
