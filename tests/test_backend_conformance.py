"""The backend conformance suite: every registered backend against the NumPy reference.

For every backend, every dynamic x loss kind x integrator is either

- run by the backend's own kernels (``support(plan).level == "compiled"``) and then agrees
  with the NumPy reference to round-off (``AGREE = 1e-12``: both draw the same
  counter-based random numbers, so this is exact up to floating-point reassociation);
- run by the NumPy reference stepper, which the backend declares with its reason and the
  result's metadata records (nothing to compare: it *is* the reference);
- declared unsupported, and ``simulate`` raises :class:`UnsupportedError` naming why;
- or refused for every backend alike when the plan is resolved (an option that the loss or
  the dynamic cannot honour).

No test here compares the reference with itself.
"""

import dataclasses
import itertools

import numpy as np
import pytest

import sdesim as sd
from sdesim.backends import REGISTRY, get_backend
from sdesim.backends.base import LEVELS, Backend, Support
from sdesim.errors import BackendUnavailableError, ConfigError, SdesimError, UnsupportedError

from cases import AGREE, BACKENDS, plan, run

OTHERS = [b for b in BACKENDS if b != "numpy"]


def conforms(backend, loss, dyn, **kw):
    """Run ``dyn`` on ``backend`` and check it against the reference as its declared support says."""
    reference = run(loss, dyn, "numpy", **kw)
    support = get_backend(backend).support(plan(loss, dyn, **kw))
    if support.level == "unsupported":
        with pytest.raises(UnsupportedError, match=support.reason[:20]):
            run(loss, dyn, backend, **kw)
        return support
    out = run(loss, dyn, backend, **kw)
    assert out.metadata["stepper"] == support.describe()
    if support.level == "reference":
        assert support.reason, "a backend that falls back to the reference says why"
        return support
    np.testing.assert_allclose(out.w, reference.w, rtol=0, atol=AGREE)
    np.testing.assert_allclose(out.loss, reference.loss, rtol=1e-12, atol=AGREE)
    return support


SCHED = sd.schedules
FAMILIES = {
    "gd": (sd.GD(lr=0.05), {}),
    "sgd": (sd.SGD(lr=0.05, batch_size=3), {}),
    "sgd-shuffle": (sd.SGD(lr=0.05, batch_size=3, sampling="shuffle"), {}),
    "sgd-fixed": (sd.SGD(lr=0.05, batch_size=3, sampling="fixed"), {}),
    "momentum": (sd.SGD(lr=0.05, batch_size=3, momentum=0.9), {}),
    "nesterov": (sd.SGD(lr=0.05, batch_size=3, momentum=0.9, nesterov=True), {}),
    "sgd-cosine": (sd.SGD(lr=0.05, batch_size=3, schedule=SCHED.Cosine(t_total=1.0, final=0.1)), {}),
    "gd-warmup": (sd.GD(lr=0.05, schedule=SCHED.WarmUp(t_warmup=0.5)), {}),
    "sde-iso": (sd.SGDDiffusion(lr=0.05, batch_size=3, noise_scale=2.0), {}),
    "sde-aniso": (sd.SGDDiffusion(lr=0.05, batch_size=3, noise="anisotropic"), {}),
    "sde-lowrank": (sd.SGDDiffusion(lr=0.05, batch_size=3, noise="lowrank", rank=1), {}),
    "heun": (sd.SGDDiffusion(lr=0.05, batch_size=3), {"integrator": "heun"}),
    "weak2": (sd.SGDDiffusion(lr=0.05, batch_size=3), {"integrator": "weak2"}),
    "sde-cyclic": (sd.SGDDiffusion(lr=0.05, batch_size=3, schedule=SCHED.Cyclic(period=0.1)), {}),
    "exact-ou": (sd.SGDDiffusion(lr=0.05, batch_size=3, noise="anisotropic",
                                 schedule=SCHED.Step(every=0.05, factor=0.5)), {"integrator": "exact_ou"}),
}
# what a backend refuses, with the reason (asserted below)
UNSUPPORTED = {
    ("symbolic", "sgd-shuffle"): "both", ("symbolic", "sgd-fixed"): "both",      # no samples to shuffle:
    ("quadratic", "sgd-shuffle"): "both", ("quadratic", "sgd-fixed"): "both",    # an option that is refused
    ("finite_sum", "sde-lowrank"): "reference",
    ("symbolic", "exact-ou"): "both", ("finite_sum", "exact-ou"): "both",
}


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("kind", ["symbolic", "finite_sum", "quadratic"])
def test_backends_agree(losses, kind, family, backend):
    dyn, kw = FAMILIES[family]
    refused = UNSUPPORTED.get((kind, family), "")
    if refused == "both":
        for name in BACKENDS:
            with pytest.raises(ConfigError):
                run(losses[kind], dyn, name, **kw)
        return
    a = run(losses[kind], dyn, "numpy", **kw)
    assert np.isfinite(a.w).all()
    assert np.abs(a.w[-1] - a.w[0]).max() > 1e-3       # it moved
    level = conforms(backend, losses[kind], dyn, **kw).level
    if backend == "numba":              # what the CPU backend compiles today
        assert level == ("reference" if refused == "reference" else "compiled")


@pytest.mark.parametrize("dyn", [sd.SGD(lr=0.05, batch_size=3, noise_covariance="hessian"),
                                 sd.SGD(lr=0.05, batch_size=3, noise_covariance=[[1.0, 0.3], [0.3, 0.5]]),
                                 sd.SGD(lr=0.05, batch_size=3, noise_factor=[[1.0], [0.5]]),
                                 sd.SGD(lr=0.05, batch_size=3, nudge_k=1, nudge_factor=0.3),
                                 sd.SGDDiffusion(lr=0.05, batch_size=3, noise="anisotropic",
                                                 noise_covariance="hessian"),
                                 sd.SGDDiffusion(lr=0.05, batch_size=3, modified=True)],
                         ids=["sgd-hessian-noise", "sgd-matrix-noise", "sgd-factor-noise", "nudged",
                              "sde-hessian-noise", "sde-modified"])
@pytest.mark.parametrize("backend", OTHERS)
def test_backends_agree_plain_loss_noise(sym, dyn, backend):
    """Noise models of a plain ``Loss`` (constant, factor, state-dependent Hessian), nudging, modified SDE."""
    conforms(backend, sym, dyn)


@pytest.mark.parametrize("dyn,integrator", [
    (sd.SGD(lr=0.05, batch_size=2, momentum=0.5), None),
    (sd.SGDDiffusion(lr=0.05, batch_size=2), None),
    (sd.SGDDiffusion(lr=0.05, batch_size=2), "heun"),
    (sd.SGDDiffusion(lr=0.05, batch_size=2), "weak2"),
    (sd.SGDDiffusion(lr=0.05, batch_size=2, modified=True, schedule=SCHED.Cyclic(period=0.3)), "heun")],
    ids=["sgd-momentum", "sde-euler", "sde-heun", "sde-weak2", "sde-modified-cyclic-heun"])
@pytest.mark.parametrize("backend", OTHERS)
def test_backends_agree_time_dependent_loss(dyn, integrator, backend):
    """A tilt c(t) = sin(4t)/2: predictor-corrector schemes take the corrector's drift (parameters
    and learning rate) at t + dt on both backends."""
    tilt = sd.Loss("(x**2 - 1)**2 + c*x", c=lambda t: 0.5 * np.sin(4 * t))
    conforms(backend, tilt, dyn, w0=(0.3,), integrator=integrator)


@pytest.mark.parametrize("backend", OTHERS)
def test_backends_agree_quadratic_nudged(qm, backend):
    conforms(backend, qm, sd.SGD(lr=0.05, batch_size=3, nudge_k=1, nudge_factor=0.3))


@pytest.mark.parametrize("case", ["fs-modified", "qm-modified", "fs-nudged", "milstein"])
def test_uncompiled_combinations_are_declared(fs, qm, case):
    """Combinations without a compiled kernel are declared ``reference`` with the reason, recorded
    in the metadata, never a silently different dynamic."""
    loss, dyn, kw = {
        "fs-modified": (fs, sd.SGDDiffusion(lr=0.05, batch_size=3, modified=True), {}),
        "qm-modified": (qm, sd.SGDDiffusion(lr=0.05, batch_size=3, noise="anisotropic", modified=True), {}),
        "fs-nudged": (fs, sd.SGD(lr=0.05, batch_size=3, nudge_k=1, nudge_factor=0.3), {}),
        "milstein": (qm, sd.SGDDiffusion(lr=0.05, batch_size=3), {"integrator": "milstein"}),
    }[case]
    assert conforms("numba", loss, dyn, steps=5, **kw).level == "reference"
    if case.endswith("modified"):       # the modified drift is really used
        b = run(loss, dyn, "numba", steps=5, **kw)
        plain = run(loss, dataclasses.replace(dyn, modified=False), "numba", steps=5)
        assert np.abs(b.w[-1] - plain.w[-1]).max() > 1e-6


# --- every SDE noise x integrator x loss kind -------------------------------------------
NOISES = {
    "isotropic": {},
    "anisotropic": {"noise": "anisotropic"},
    "lowrank": {"noise": "lowrank", "rank": 1},
    "hessian": {"noise": "anisotropic", "noise_covariance": "hessian"},
    "matrix": {"noise": "anisotropic", "noise_covariance": [[1.0, 0.3], [0.3, 0.5]]},
}
INTEGRATORS = ["euler_maruyama", "heun", "weak2", "milstein", "exact_ou"]


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("noise,integrator,kind",
                         list(itertools.product(NOISES, INTEGRATORS, ["symbolic", "finite_sum", "quadratic"])))
def test_sde_matrix(losses, backend, noise, integrator, kind):
    """Each combination conforms, or is refused for every backend alike when the plan is resolved."""
    dyn = sd.SGDDiffusion(lr=0.05, batch_size=3, **NOISES[noise])
    try:
        plan(losses[kind], dyn, integrator=integrator, steps=6)
    except SdesimError as refused:
        for name in BACKENDS:
            with pytest.raises(type(refused)):
                run(losses[kind], dyn, name, integrator=integrator, steps=6)
        return
    conforms(backend, losses[kind], dyn, integrator=integrator, steps=6)


# --- the contract itself ------------------------------------------------------------------
class _Declaring(Backend):
    """A backend that only declares: unavailable, or available with everything unsupported."""

    name = "declaring"
    install = 'pip install "sdesim[gpu]"'

    def __init__(self, ok):
        self.ok = ok

    def available(self):
        return (True, "") if self.ok else (False, "no CUDA device")

    def support(self, plan):
        return Support("unsupported", "this backend runs nothing")

    def advance(self, plan, state, k0, k1, record):
        raise AssertionError("advance must not be reached")


@pytest.fixture
def declaring(monkeypatch):
    import sys
    import types
    for ok in (False, True):
        module = types.ModuleType(f"declaring_{ok}")
        module.backend = _Declaring(ok)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(REGISTRY, f"declaring_{ok}", module.__name__)


def test_registry(sym, declaring):
    gd = sd.GD(lr=0.1)
    with pytest.raises(ConfigError, match="unknown backend 'cuda'.*cupy.*numba"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, backend="cuda")
    if "cupy" not in BACKENDS:          # no device here (tests/test_cupy_backend.py runs it simulated)
        with pytest.raises(BackendUnavailableError, match=r'backend .cupy. is not available: .*'
                                                          r'\(pip install "sdesim\[gpu\]"\)'):
            sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, backend="cupy")
    with pytest.raises(BackendUnavailableError, match=r'no CUDA device \(pip install "sdesim\[gpu\]"\)'):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, backend="declaring_False")
    with pytest.raises(UnsupportedError, match="runs nothing"):
        sd.simulate(sym, gd, w0=[0.1, 0.2], steps=2, backend="declaring_True")


@pytest.mark.parametrize("backend", BACKENDS)
def test_support_is_declared(losses, backend):
    """``support`` answers one of the levels for every family and kind, with a reason unless compiled."""
    engine = get_backend(backend)
    for kind, (name, (dyn, kw)) in itertools.product(losses, FAMILIES.items()):
        try:
            p = plan(losses[kind], dyn, **kw)
        except ConfigError:
            continue
        support = engine.support(p)
        assert support.level in LEVELS
        assert support.level == "compiled" or backend == "numpy" or support.reason


# --- the worked example of docs/architecture.md ----------------------------------------
class Float32Backend(Backend):
    name = "float32"

    def support(self, plan):
        if plan.kind == "quadratic" and plan.family == "discrete" and plan.noise is None \
                and plan.sampler is None and plan.momentum == 0 and not plan.nudge[0]:
            return Support("compiled")
        return Support("unsupported", "float32 runs GD on quadratic models only")

    def advance(self, plan, state, k0, k1, record):
        from sdesim.backends.numpy_backend import mark_divergence
        H = plan.loss.H.astype(np.float32)
        w_star = plan.loss.w_star.astype(np.float32)
        records = []
        for k in range(k0, k1):
            if k in record:
                records.append(state.W.copy())
            alive = state.diverged_at < 0
            d = (state.W[alive] - w_star).astype(np.float32)
            state.W[alive] = w_star + d - np.float32(plan.lr_at(k)) * (d @ H)
            mark_divergence(plan, state, k + 1)
        return records


def test_docs_example_backend(qm, monkeypatch):
    """A backend is one module and one registry line; it runs what it declares and nothing else."""
    import sys
    import types
    module = types.ModuleType("float32_backend")
    module.backend = Float32Backend()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(REGISTRY, "float32", module.__name__)
    gd = sd.GD(lr=0.1, schedule=sd.schedules.Cosine(t_total=3.0, final=0.1))
    a = run(qm, gd, "numpy", steps=30)
    b = run(qm, gd, "float32", steps=30)
    assert b.metadata["stepper"] == "compiled"
    np.testing.assert_allclose(b.w, a.w, rtol=0, atol=1e-6)           # float32 accuracy
    with pytest.raises(UnsupportedError, match="GD on quadratic models only"):
        run(qm, sd.SGD(lr=0.1), "float32")


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("kind,dyn", [
    ("symbolic", sd.SGDDiffusion(lr=0.05, batch_size=3)),
    ("symbolic", sd.SGD(lr=0.05, batch_size=3, momentum=0.5, noise_covariance=[[1.0, 0.3], [0.3, 0.5]])),
    ("finite_sum", sd.SGD(lr=0.05, batch_size=3)),
    ("finite_sum", sd.SGD(lr=0.05, batch_size=3, sampling="shuffle")),
    ("quadratic", sd.SGD(lr=0.05, batch_size=3, momentum=0.5)),
    ("quadratic", sd.SGDDiffusion(lr=0.05, batch_size=3, noise="anisotropic"))],
    ids=["sym-sde", "sym-sgd-momentum", "fs-replacement", "fs-shuffle", "qm-dense", "qm-spectral"])
def test_many_chunks(losses, backend, kind, dyn):
    """300 particles span several chunks of every compiled kernel (32, 64 and 256 particles): each
    particle keeps its own random stream wherever its chunk starts."""
    conforms(backend, losses[kind], dyn, n=300, steps=12)
