"""Errors raised for bad input and failed runs, and warnings, each naming the problem.

Every error sdesim raises on purpose derives from :class:`SdesimError` (and from
the matching built-in, so ``except ValueError`` keeps working); every warning
from :class:`SdesimWarning`.
"""


class SdesimError(Exception):
    """Base class of every error sdesim raises on purpose."""


class ConfigError(SdesimError, ValueError):
    """An option is invalid, or cannot be honoured by this loss, dynamic or backend."""


class UnsupportedError(ConfigError):
    """A valid combination that this backend or integrator does not run (the message says why)."""


class BackendUnavailableError(SdesimError, ImportError):
    """A backend's dependencies or device are missing (the message names what to install)."""


class LossKindError(SdesimError, TypeError):
    """An operation needs a kind of loss (finite sum, quadratic model, ...) it was not given."""


class SymbolError(SdesimError, ValueError):
    """An expression uses a symbol that is neither a variable nor a bound parameter."""


class ParseError(SdesimError, ValueError):
    """A loss string cannot be parsed (the message names the offending token)."""


class ShapeError(SdesimError, ValueError):
    """An array has the wrong shape (trailing dimension, data lengths, ...)."""


class NonPSDError(ShapeError):
    """A matrix that must be symmetric positive semi-definite is not (names its smallest eigenvalue)."""


class NonFiniteError(SdesimError, FloatingPointError):
    """A value that must be finite is NaN or infinite."""


class DivergenceError(SdesimError, FloatingPointError):
    """A simulation diverged: names the first step and the number of particles."""


class FormatError(SdesimError, ValueError):
    """A file is corrupted, truncated, foreign, or of an unsupported format version (names the path)."""


class SdesimWarning(UserWarning):
    """Base class of every warning sdesim issues."""


class DivergenceWarning(SdesimWarning, RuntimeWarning):
    """Some particles diverged (they are stopped and reported, never propagated as NaN)."""


class LossSyntaxError(ParseError, SymbolError):
    """A loss string is not a valid expression: names the token and its position (also a `SymbolError`)."""


class MissingFileError(SdesimError, FileNotFoundError):
    """A file to read does not exist (names the path)."""


class BoundaryMassWarning(SdesimWarning):
    """A density carries non-negligible mass in the outermost cells: enlarge the domain."""


class ResolutionWarning(SdesimWarning):
    """A density changes by a large factor between neighbouring cells where it matters: refine the grid."""


class PositivityWarning(SdesimWarning):
    """The cross terms of a diffusion tensor exceed the grid anisotropy: positivity is not guaranteed."""


class ConvergenceWarning(SdesimWarning, RuntimeWarning):
    """An iterative method (L-BFGS, ...) stopped before reaching its tolerance."""


class ValidityWarning(SdesimWarning, UserWarning):
    """A theory's assumptions fail here (no strict minimum, unstable, non-stationary, ...)."""


class StepSizeWarning(SdesimWarning, RuntimeWarning):
    """An SDE step is coarse for the curvature the run met: the stationary spread is biased (names by how much)."""
