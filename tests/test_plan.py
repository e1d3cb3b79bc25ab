"""Resolving a run into a plan: what is refused before any kernel runs, and what is normalised."""

import numpy as np
import pytest

import sdesim as sd
from sdesim import integrators
from sdesim.errors import ConfigError, ShapeError
from sdesim.plan import resolve


@pytest.mark.parametrize("make", [
    lambda: sd.schedules.WarmUp(t_warmup=0.0), lambda: sd.schedules.Cosine(t_total=-1.0),
    lambda: sd.schedules.Cyclic(period=0.0), lambda: sd.schedules.Step(every=float("nan")),
    lambda: sd.schedules.Step(every=1.0, factor=-0.5), lambda: sd.schedules.Cosine(t_total=1.0, final=-0.1),
    lambda: sd.schedules.WarmUp(t_warmup=1.0, then=0.5)])
def test_bad_schedules_are_refused(make):
    with pytest.raises(ConfigError):
        make()


def test_integral_floats_are_stored_as_integers(sym, fs):
    """``batch_size=4.0`` etc. mean the integers; they run (and run alike on both backends)."""
    sgd = sd.SGD(lr=0.05, batch_size=3.0, sampling="shuffle", nudge_k=0.0)
    assert type(sgd.batch_size) is int and type(sgd.nudge_k) is int
    assert type(sd.SGDDiffusion(lr=0.1, noise="lowrank", rank=1.0).rank) is int
    assert type(sd.ModifiedFlow(lr=0.1, order=2.0).order) is int
    a, b = (sd.simulate(fs, sgd, w0=[0.5, 0.3], n_particles=3, steps=9, backend=k) for k in ("numpy", "numba"))
    np.testing.assert_allclose(b.w, a.w, rtol=0, atol=1e-12)


def test_refused_at_the_plan(sym, qm):
    with pytest.raises(ShapeError, match="r >= 1"):
        sd.SGD(lr=0.1, noise_factor=np.zeros((2, 0)))
    with pytest.raises(ConfigError, match="steps or t_end, not both"):
        resolve(sym, sd.SGDDiffusion(lr=0.1), steps=10, t_end=1.0)
    with pytest.raises(ConfigError, match="rank=3 exceeds the dimension 2"):
        resolve(sym, sd.SGDDiffusion(lr=0.1, noise="lowrank", rank=3), t_end=1.0)
    with pytest.raises(ConfigError, match="defines its own gradient noise"):
        resolve(qm, sd.SGDDiffusion(lr=0.1, noise="anisotropic", noise_covariance=np.eye(2)), t_end=1.0)
    with pytest.raises(ConfigError, match="rank=2 applies to noise='lowrank' only"):
        sd.SGDDiffusion(lr=0.1, rank=2)


def test_an_inherited_affine_step_is_not_a_new_scheme(qm):
    """A subclass that changes ``step`` but not ``affine`` has no affine form of its own: the compiled
    quadratic kernel must not run the parent's scheme in its place."""

    class Halved(integrators.EulerMaruyama):
        name = "halved"

        def step(self, sde, W, t, dt, Z):
            return super().step(sde, W, t, 0.5 * dt, Z)

    assert integrators.get("euler_maruyama").has_affine and not Halved().has_affine
    assert integrators.get("weak2").has_affine        # inherits both step and affine from Heun
    p = resolve(qm, sd.SGDDiffusion(lr=0.1, noise="anisotropic"), t_end=1.0, integrator=Halved())
    assert sd.backends.get_backend("numba").support(p).level == "reference"


def test_compare_with_auto_step_and_flows(sym):
    """``dt="auto"`` picks the SDE's step; the flows next to it take their own."""
    out = sd.compare(sym, [sd.GradientFlow(), sd.SGDDiffusion(lr=0.1, batch_size=4)], w0=[0.5, 0.3],
                     n_particles=5, t_end=0.5, dt="auto", record_dt=0.1)
    for res in out:
        np.testing.assert_allclose(res.t, np.arange(6) * 0.1, atol=1e-12)
