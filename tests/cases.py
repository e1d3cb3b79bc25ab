"""Shared by the simulator tests: the backends under test, their agreement tolerance, one way to run."""

import numpy as np

import sdesim as sd
from sdesim.backends import REGISTRY, get_backend
from sdesim.errors import BackendUnavailableError
from sdesim.plan import resolve


def _available(name):
    try:
        get_backend(name)
    except BackendUnavailableError:          # e.g. "cupy" without a GPU: tests/test_cupy_backend.py
        return False
    return True


BACKENDS = sorted(filter(_available, REGISTRY), key=lambda name: name != "numpy")     # the reference first
AGREE = 1e-12


def settings(dyn, n=7, steps=37, record_every=5, seed=3, w0=(0.5, 0.3), **kw):
    """Keyword arguments of ``sd.simulate`` for a short run of ``dyn``."""
    if dyn.continuous:
        kw.setdefault("t_end", steps * dyn.lr / 10)
    else:
        kw["steps"] = steps
    return dict(w0=np.asarray(w0, float), n_particles=n, record_every=record_every, seed=seed, **kw)


def run(loss, dyn, backend, **kw):
    return sd.simulate(loss, dyn, backend=backend, **settings(dyn, **kw))


def plan(loss, dyn, **kw):
    """The plan ``run(loss, dyn, ..., **kw)`` resolves to."""
    s = settings(dyn, **kw)
    return resolve(loss, dyn, s["n_particles"], s.get("steps"), s.get("t_end"), s.get("dt"), s["seed"],
                   s.get("integrator"))
