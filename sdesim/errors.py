"""Errors raised for bad input and failed runs, each naming the problem."""


class SdesimError(Exception):
    """Base class of every error sdesim raises on purpose."""


class SymbolError(SdesimError, ValueError):
    """An expression uses a symbol that is neither a variable nor a bound parameter."""


class ShapeError(SdesimError, ValueError):
    """An array has the wrong shape (trailing dimension, data lengths, ...)."""


class NonFiniteError(SdesimError, FloatingPointError):
    """A value that must be finite is NaN or infinite."""


class DivergenceError(SdesimError, FloatingPointError):
    """A simulation diverged: names the first step and the number of particles."""


class FormatError(SdesimError, ValueError):
    """A file has an unknown or unsupported format version."""
