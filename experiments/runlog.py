"""Helpers the experiments' table scripts share: a metric from a run's log.h5 and a mean ± std cell.

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent)); from runlog import metric, mean_std
"""
import math

import numpy as np


def metric(f, name):
    """(steps, values) of metric `name` in an open log.h5 (h5py.File); two empty arrays when it was never logged."""
    if f"metrics/{name}/step" not in f:
        return np.array([]), np.array([])
    return f[f"metrics/{name}/step"][:], f[f"metrics/{name}/value"][:]


def mean_std(values, digits=3):
    """'m ± s' (sample std) over the values that are set, the value alone for one, '–' for none."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"
