"""How a parameter value is printed for people: logs, outcome reasons and the CLI use this one function.

Why: ``repr`` of a float computed by a schedule reads ``3.3189655172413796e-05``;
people compare rates by their first digits. Small and large numbers get three
significant digits in exponent form (``3.32e-05``, the form the old polling
design logged: ``✅ Applied learning rate update: 1.00e-04 → 5.00e-05``; learning rates
are below 0.01). Numbers of everyday size keep up to six significant digits (``0.3``,
``0.999999``): betas near 1 differ only there, and rounding 0.999999 to 1 would misstate it.
"""

from __future__ import annotations

import math

__all__ = ["format_value"]


def format_value(value: object) -> str:
    """``value`` as a person reads it; integers, strings and ``None`` unchanged."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:.6g}"
    return f"{value:.2e}"
