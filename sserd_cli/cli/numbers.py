"""Numbers from the command line, checked before they reach any maths.

``float()`` takes "nan", "inf" and "1e999" (= inf) as happily as "0.5", and every range test written as
``value < low`` lets NaN through. Each check here says in one line what the flag accepts.
"""

from __future__ import annotations

import math

from ..errors import SserdError

# training options that are shares of something, in [0, 1]
FRACTIONS = ("mixing", "real_fraction", "noise")
# options whose range the stage's own config check words better (0 means "no limit"): only finiteness here
RANGED_BY_CONFIG = ("time_limit",)


def check_number(value: float, flag: str, *, low: float | None = None, high: float | None = None,
                 above: bool = False) -> float:
    """``value`` if it is finite and within [low, high] (``above``: strictly more than ``low``)."""
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if above else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise SserdError(f"{flag} {value}: must be {_wanted(low, high, above)}")
    return float(value)


def _wanted(low, high, above) -> str:
    if low is not None and high is not None:
        return f"a number from {low:g} to {high:g}"
    if low is not None:
        return "a finite number " + (f"above {low:g}" if above else f"of {low:g} or more")
    return "a finite number"


def check_training_numbers(options: dict) -> None:
    """Every float option of a training command: learning rates finite and positive, shares in [0, 1],
    every other weight, limit or scale finite and not negative."""
    for key, value in options.items():
        if not isinstance(value, float):
            continue
        flag = "--" + key.replace("_", "-")
        if key in RANGED_BY_CONFIG:
            check_number(value, flag)
        elif key == "lr" or key.endswith("_lr"):
            check_number(value, flag, low=0.0, above=True)
        elif key in FRACTIONS:
            check_number(value, flag, low=0.0, high=1.0)
        else:
            check_number(value, flag, low=0.0)
