"""Property-based test of the public ``sd.simulate`` API, every case isolated from pytest.

Property: for any generated case (loss, dynamic and its options, noise matrices, integrator,
backend, particles, clock, ``w0``, seed), building the dynamic and calling ``sd.simulate``
either returns a ``Result`` of the documented shapes (``t (T,)``, ``w (T, N, dim)``,
``loss (T, N)``; finite everywhere except NaN for diverged particles from their divergence
step on) or raises an instance of ``sdesim.errors.SdesimError`` with a non-empty message.
Any other exception, the interpreter dying (a segfault in a Numba kernel), or a case that
does not answer within ``CASE_TIMEOUT`` fails. A returned result is also checked for: no
+-inf anywhere, no partly-NaN state, a finite loss exactly at finite states, a particle's
NaN starting at its ``diverged_at`` step, ``t`` strictly increasing and ending at
``n_steps * dt``, ``T`` = the records of ``record_every``, and ``n_steps == steps`` for GD/SGD.

Cases run in one persistent worker process (``tests/_api_worker.py``), fed JSON lines:
importing sdesim and compiling a kernel costs seconds, a case milliseconds afterwards. A
worker that dies fails the case with its stderr tail (the ``faulthandler`` stack) and is
restarted for the next one. The losses are a small fixed set, so kernels are compiled
once. Hypothesis runs derandomized, without a database and without shrinking (a crash
costs a worker restart): a failure reports the first failing case as generated.
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

WORKER = Path(__file__).with_name("_api_worker.py")
START_TIMEOUT = 120.0          # import sdesim
CASE_TIMEOUT = 120.0           # a case, including compiling its kernel on a cold cache
MAX_EXAMPLES = 200

# the losses of _api_worker.make_loss: name -> (dim, n_samples or None)
LOSSES = {"dw2": (2, None), "dw1": (1, None), "fs1": (1, 7), "fs2": (2, 12), "qm2": (2, None),
          "qm3": (3, None), "catalog_dw": (2, None)}
SDESIM_ERROR = "sdesim.errors.SdesimError"


class WorkerDied(Exception):
    pass


class Worker:
    """The persistent worker: ``run(case)`` answers a dict, or raises ``WorkerDied`` (crash or hang)."""

    def __init__(self):
        self.proc = None
        self.count = 0
        self.restarts = 0
        self.memo = {}

    def start(self):
        self.stderr = tempfile.TemporaryFile(mode="w+b")
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                     text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        hello = self._answer(START_TIMEOUT, "starting")
        assert hello.get("ready"), hello

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.put(line)
        lines.put(None)

    def stderr_tail(self, n=6000):
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - n))
        return self.stderr.read().decode(errors="replace")

    def _answer(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = "timeout"
        if line is None or line == "timeout":
            if line == "timeout":
                self.proc.kill()
            code = self.proc.wait()
            tail = self.stderr_tail()
            self.proc = None
            why = f"no answer within {timeout:.0f} s (killed)" if line == "timeout" else \
                f"worker died with exit code {code}" + (f" (signal {-code})" if code < 0 else "")
            raise WorkerDied(f"{why} while {what}\n--- worker stderr (tail) ---\n{tail}")
        return json.loads(line)

    def run(self, case):
        """The answer to ``case``; a case seen before is not run again (Hypothesis replays a failing
        example once more to report it: a crash or a hang would cost a restart or a timeout again)."""
        key = json.dumps(case, sort_keys=True)
        if key not in self.memo:
            try:
                self.memo[key] = (self._run(case), None)
            except WorkerDied as died:
                self.memo[key] = (None, died)
        answer, died = self.memo[key]
        if died is not None:
            raise died
        return answer

    def _run(self, case):
        if self.proc is None or self.proc.poll() is not None:
            self.restarts += self.count > 0
            self.start()
        self.count += 1
        request = {"id": self.count, "case": case}
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass                                      # reported by _answer
        answer = self._answer(CASE_TIMEOUT, f"running case {self.count}")
        assert answer.get("id") == self.count, (answer, self.count)
        return answer

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


# --- the contract -------------------------------------------------------------------------
def expected_records(n_steps, record_every):
    return len(set(range(0, n_steps + 1, record_every)) | {n_steps})


def violations(case, answer):
    """What is wrong with ``answer`` to ``case`` (empty when the property holds)."""
    status = answer.get("status")
    if status == "raised":
        mro = answer["mro"]
        if SDESIM_ERROR not in mro:
            return [f"raised {mro[0]} (not an SdesimError): {answer['message']}"]
        if not answer["message"].strip():
            return [f"raised {mro[0]} with an empty message"]
        return []
    if status != "ok":
        return [f"worker could not run the case: {answer}"]
    problems = list(answer.get("problems", []))
    dim, _ = LOSSES[case["loss"]]
    N = case["n_particles"]
    w, loss, t = answer["w_shape"], answer["loss_shape"], answer["t_shape"]
    if w is None or len(w) != 3 or w[1:] != [N, dim]:
        problems.append(f"w has shape {w}, expected (T, {N}, {dim})")
    elif loss != w[:2]:
        problems.append(f"loss has shape {loss}, expected {w[:2]}")
    elif t != w[:1]:
        problems.append(f"t has shape {t}, expected {w[:1]}")
    elif answer["diverged_at_shape"] != [N]:
        problems.append(f"diverged_at has shape {answer['diverged_at_shape']}, expected ({N},)")
    n_steps = answer.get("n_steps")
    if w and n_steps is not None and len(w) == 3:
        T = expected_records(n_steps, case.get("record_every", 1))
        if w[0] != T:
            problems.append(f"{w[0]} records for n_steps={n_steps}, record_every={case.get('record_every', 1)}: "
                            f"expected {T}")
    if case["dynamic"]["type"] in ("GD", "SGD") and case.get("steps") is not None and n_steps != case["steps"]:
        problems.append(f"discrete run of steps={case['steps']} reports n_steps={n_steps}")
    return problems


def check(worker, case):
    """Run ``case`` and assert the property; the message names the case."""
    shown = json.dumps(case)
    try:
        answer, crash = worker.run(case), None
    except WorkerDied as died:
        answer, crash = None, str(died)
    if crash is not None:                             # outside the except: no chained traceback
        pytest.fail(f"worker crashed on case {shown}:\n{crash}", pytrace=False)
    problems = violations(case, answer)
    if problems:
        detail = answer.get("traceback", "") if answer.get("status") == "raised" else json.dumps(answer)
        pytest.fail(f"case {shown}\n  " + "\n  ".join(problems) + f"\n{detail}", pytrace=False)
    return answer


# --- strategies -----------------------------------------------------------------------------
# Each argument is usually valid and, about one draw in ONE_IN, invalid, so that most cases
# reach a kernel while every validation path is still exercised.
ONE_IN = 20


def sometimes(draw, one_in=ONE_IN):
    """True about once in ``one_in`` draws (the last choice, so it is not the simplest one)."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


def usually(valid, invalid, one_in=ONE_IN):
    return st.sampled_from([valid] * (one_in - 1) + [invalid]).flatmap(lambda s: s)


def finite_floats(lo=-2.0, hi=2.0):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda x: float(f"{x:.4g}"))


LR = usually(st.one_of(st.sampled_from([1e-3, 0.01, 0.05, 0.1, 0.3]),
                       st.floats(1e-4, 2.5).map(lambda x: float(f"{x:.3g}")),
                       st.sampled_from([10.0, 1e3, 1e6, 1e12])),                 # the last ones diverge
             st.sampled_from([0.0, -0.1, math.nan, math.inf]))
BATCH = usually(st.integers(1, 30), st.sampled_from([0, -1, 2.5]))
# "cupy": unavailable without a CUDA device (BackendUnavailableError naming what to install), or
# unsupported for some plans (UnsupportedError); "bogus" is unknown (ConfigError)
BACKEND = usually(st.sampled_from(["numpy", "numba"]), st.sampled_from(["cupy", "bogus"]))


@st.composite
def matrix(draw, dim):
    """A noise covariance or factor: usually right, sometimes of a wrong shape, non-symmetric,
    not PSD, or holding NaN / inf."""
    kind = draw(st.sampled_from(["psd", "psd", "psd", "factor", "factor", "zero", "symmetric",
                                 "nonsymmetric", "wrong_shape", "vector", "nan", "inf"]))
    cols = draw(st.integers(1, 3))
    shape = {"factor": (dim, cols), "wrong_shape": (draw(st.integers(1, 4)), draw(st.integers(1, 4))),
             "vector": (dim,)}.get(kind, (dim, dim))
    size = math.prod(shape)
    flat = draw(st.lists(finite_floats(), min_size=size, max_size=size))
    rows = [flat[i * shape[-1]:(i + 1) * shape[-1]] for i in range(size // shape[-1])] if len(shape) == 2 else flat
    if kind == "psd":                                  # A A^T
        rows = [[sum(a * b for a, b in zip(rows[i], rows[j])) for j in range(dim)] for i in range(dim)]
    elif kind == "symmetric":                          # (A + A^T) / 2: indefinite in general
        rows = [[0.5 * (rows[i][j] + rows[j][i]) for j in range(dim)] for i in range(dim)]
    elif kind in ("nan", "inf"):
        i, j = draw(st.integers(0, dim - 1)), draw(st.integers(0, dim - 1))
        rows[i][j] = math.nan if kind == "nan" else math.inf
    elif kind == "zero":
        rows = [[0.0] * dim for _ in range(dim)]
    return rows


@st.composite
def noise_spec(draw, dim):
    """``noise_covariance`` / ``noise_factor`` keyword arguments (half the time none)."""
    which = draw(st.sampled_from(["none"] * 6 + ["covariance", "covariance", "covariance", "hessian", "hessian",
                                                  "factor", "factor", "factor"]
                                 + ["both", "bad_string"] * sometimes(draw, 4)))
    if which == "none":
        return {}
    if which == "hessian":
        return {"noise_covariance": "hessian"}
    if which == "bad_string":
        return {"noise_covariance": "identity"}
    out = {}
    if which in ("covariance", "both"):
        out["noise_covariance"] = draw(matrix(dim))
    if which in ("factor", "both"):
        out["noise_factor"] = draw(matrix(dim))
    return out


def kind_of(loss):
    return {"fs1": "finite_sum", "fs2": "finite_sum", "qm2": "quadratic", "qm3": "quadratic"}.get(loss, "symbolic")


@st.composite
def dynamic_spec(draw, loss):
    """A dynamic and its options: usually ones that apply to ``loss``, sometimes ones that do not."""
    dim, n_samples = LOSSES[loss]
    kind = kind_of(loss)
    family = draw(st.sampled_from(["GD", "SGD", "SGD", "SGD", "SGDDiffusion", "SGDDiffusion", "SGDDiffusion",
                                   "GradientFlow", "ModifiedFlow"]))
    if family == "GradientFlow":
        return {"type": family, "kwargs": {}}
    kw = {"lr": draw(LR)}
    if family == "GD":
        return {"type": family, "kwargs": kw}
    if family == "ModifiedFlow":
        kw["order"] = draw(usually(st.integers(0, 3), st.sampled_from([-1, 1.5])))
        sgd = kind == "finite_sum" and draw(st.booleans())
        kw["kind"] = draw(usually(st.just("sgd" if sgd else "gd"), st.sampled_from(["sgd", "bogus"])))
        if kw["kind"] == "sgd":
            kw["order"] = 1 if not sometimes(draw) else kw["order"]
        if kw["kind"] == "sgd" or sometimes(draw):
            kw["batch_size"] = draw(BATCH)
        return {"type": family, "kwargs": kw}
    kw["batch_size"] = draw(BATCH)
    if family == "SGD":
        kw["sampling"] = draw(usually(st.sampled_from(["replacement", "shuffle", "fixed"] if kind == "finite_sum"
                                                      else ["replacement"]),
                                      st.sampled_from(["shuffle", "fixed", "bogus"])))
        if kind == "finite_sum" and kw["sampling"] != "replacement" and sometimes(draw, 3):
            kw["batch_size"] = draw(st.integers(n_samples + 1, 30))    # B > n without replacement
        kw["momentum"] = draw(usually(st.sampled_from([0.0, 0.0, 0.0, 0.5, 0.9, 0.99]),
                                      st.sampled_from([1.0, -0.1])))
        kw["nesterov"] = draw(st.booleans()) if kw["momentum"] else sometimes(draw)
        if sometimes(draw, 6):
            kw["nudge_k"] = draw(usually(st.integers(0, dim), st.just(dim + 1)))
            kw["nudge_factor"] = draw(usually(st.sampled_from([0.0, 0.5, 2.0]), st.just(-1.0)))
        noisy = True
    else:
        kw["noise"] = draw(usually(st.sampled_from(["isotropic", "anisotropic", "lowrank"]), st.just("bogus")))
        if kw["noise"] == "lowrank":
            kw["rank"] = draw(usually(st.integers(1, dim), st.sampled_from([-1, 0, dim + 1, 1.5])))
        elif sometimes(draw):
            kw["rank"] = draw(st.integers(-1, 4))
        kw["noise_scale"] = draw(usually(st.sampled_from([1.0, 1.0, 0.5, 3.0]), st.sampled_from([0.0, -1.0])))
        kw["modified"] = sometimes(draw, 5)
        noisy = kw["noise"] != "isotropic"
    if noisy and kind == "symbolic" or sometimes(draw, 20):
        kw.update(draw(noise_spec(dim)))
    return {"type": family, "kwargs": kw}


@st.composite
def cases(draw):
    loss = draw(st.sampled_from(sorted(LOSSES)))
    dim, n_samples = LOSSES[loss]
    dyn = draw(dynamic_spec(loss))
    N = draw(usually(st.integers(1, 5), st.sampled_from([0, -1])))
    continuous = dyn["type"] in ("SGDDiffusion", "GradientFlow", "ModifiedFlow")
    if dyn["type"] == "SGDDiffusion":
        schemes = ["euler_maruyama", "heun", "weak2", "milstein"] + (["exact_ou"] * 2 if kind_of(loss) == "quadratic"
                                                                     else [])
        integrator = draw(usually(st.sampled_from([None, None] + schemes), st.sampled_from(["bogus", "exact_ou"])))
    else:
        integrator = draw(usually(st.just(None), st.sampled_from(["euler_maruyama", "dopri5", "bogus"])))
    # the clock: a few steps whatever the step size
    k = draw(usually(st.integers(1, 20), st.just(0)))
    lr = dyn["kwargs"].get("lr")
    dt = None
    if continuous:
        if dyn["type"] == "GradientFlow" or sometimes(draw, 4):
            dt = draw(usually(st.sampled_from([0.01, 0.1, 0.5]), st.sampled_from([0.0, -0.1, math.nan])))
    elif sometimes(draw, 20):
        dt = 0.1                                                              # discrete: refused
    clock = {"dt": dt}
    if draw(st.booleans()):
        clock["steps"] = draw(usually(st.just(k), st.sampled_from([-1, 2.5]), one_in=20))
    else:
        step = dt if dt is not None else (lr / 10 if continuous and isinstance(lr, float) else lr)
        if isinstance(step, float) and math.isfinite(step) and step > 0:
            clock["t_end"] = k * step * draw(st.sampled_from([1.0, 1.0, 1.3]))
        else:
            clock["t_end"] = draw(st.sampled_from([0.0, 0.5]))
    # w0: one state, one per particle, or a wrong shape; sometimes non-finite or out of bounds
    shape_kind = draw(usually(st.sampled_from(["one", "one", "each"]),
                              st.sampled_from(["short", "long", "scalar", "wrong_n"])))
    shape = {"one": (dim,), "each": (max(N, 0), dim), "short": (max(dim - 1, 0),), "long": (dim + 1,),
             "scalar": (), "wrong_n": (max(N, 0) + 1, dim)}[shape_kind]
    size = math.prod(shape)
    flat = draw(st.lists(finite_floats(), min_size=size, max_size=size))
    if flat and sometimes(draw, 15):
        flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from([math.nan, math.inf, 1e9]))
    if len(shape) == 0:
        w0 = flat[0] if flat else 0.5
    elif len(shape) == 1:
        w0 = flat
    else:
        w0 = [flat[i * dim:(i + 1) * dim] for i in range(shape[0])]
    seed = draw(usually(st.integers(0, 2**32), st.sampled_from([-1, 2**64 - 1, 2**64, 2**70]), one_in=20))
    return {"loss": loss, "dynamic": dyn, "w0": w0, "n_particles": N, **clock,
            "record_every": draw(usually(st.sampled_from([1, 1, 3]), st.just(0), one_in=20)),
            "backend": draw(BACKEND), "integrator": integrator, "seed": seed}


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate), print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(case=cases())
def test_simulate_returns_documented_result_or_raises_sdesim_error(worker, case):
    check(worker, case)


# --- the known crash: minibatches larger than the data without replacement ------------------
# (segfault on "numba", ZeroDivisionError on "numpy", or a silent run on garbage indices)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("sampling", ["shuffle", "fixed"])
@pytest.mark.parametrize("loss", ["fs1", "fs2"])
@pytest.mark.parametrize("excess", [1, 30])
def test_batch_larger_than_data_without_replacement_raises_sdesim_error(worker, loss, sampling, backend, excess):
    dim, n = LOSSES[loss]
    B = n + excess
    case = {"loss": loss, "dynamic": {"type": "SGD", "kwargs": {"lr": 0.1, "batch_size": B, "sampling": sampling}},
            "w0": [0.5] * dim, "n_particles": 3, "steps": 5, "dt": None, "record_every": 1,
            "backend": backend, "integrator": None, "seed": 0}
    answer = check(worker, case)                      # a raised error must be an SdesimError
    assert answer["status"] == "raised", f"B = {B} > n = {n} with sampling={sampling!r} ran: {answer}"
