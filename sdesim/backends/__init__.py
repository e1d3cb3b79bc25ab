"""Execution backends for ensemble kernels and the counter-based RNG they share."""
