"""Checks of API arguments: misuse raises ValueError naming the argument and the value,
before any slow work starts (a float K, for one, would otherwise fail deep in k-means).
"""

import math
import numbers


def whole(name, value, low=None, high=None):
    """value as an int if it is a whole number (not a bool) in low..high (either end
    open when None); else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    value = int(value)
    if low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, not {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high}, not {value}")
    return value


def positive(name, value):
    """value as a float if it is a finite real number (not a bool) above 0; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number greater than 0, not {value!r}")
    return float(value)
