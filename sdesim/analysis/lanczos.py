"""Top eigenpairs of matrix-free symmetric operators: :func:`sdesim.linalg.lanczos`, under its analysis name."""

from sdesim.linalg import lanczos

__all__ = ["lanczos"]
