"""Parallel kernels called from several Python threads at once (``sdesim._threading.launch``).

Under Numba's ``workqueue`` layer (sdesim's choice where PyTorch is installed, see
``sdesim/_threading.py``; set here through the environment) two
concurrent parallel launches abort the process ("Concurrent access has been detected"), so
the check runs in a subprocess: four threads that each simulate a 2e5-particle ensemble
and evaluate a finite-sum gradient and a symbolic loss on batches past the parallel
threshold. It must exit cleanly with the numbers of the same calls made one after another.
"""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, threading
import numpy as np
import numba
import sdesim as sd

loss = sd.Loss("(x**2 - 1)**2 + 2*y**2 + 0.5*x*y")
rng = np.random.default_rng(0)
fs = sd.FiniteSumLoss("(a*w - b)**2", ["w"], {"a": rng.normal(size=5000), "b": np.ones(5000)})
W = rng.normal(size=(5000, 1))

def work(i):
    r = sd.simulate(loss, sd.SGDDiffusion(0.1, 4), [0.1, 0.2], 200_000, steps=20, seed=i, keep="final")
    return [float(r.final.sum()), float(fs.grad(W).sum()), float(loss.value(np.full((10_000, 2), 0.1 * i)).sum())]

serial = [work(i) for i in range(4)]
threaded = [None] * 4
def run(i):
    threaded[i] = work(i)
threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"layer": numba.threading_layer(), "same": serial == threaded}))
"""


def test_threads_share_the_parallel_kernels():
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"layer": "workqueue", "same": True}


def test_the_lock_follows_the_layer_numba_resolved():
    """``"default"`` resolves to workqueue where no TBB or OpenMP runtime loads (hidden here): the
    kernels must still take turns, though the configured name is not "workqueue"."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['numba.np.ufunc.omppool'] = None\n"
            "sys.modules['numba.np.ufunc.tbbpool'] = None\n" + SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"layer": "workqueue", "same": True}
