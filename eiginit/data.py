"""Data that ships with the package: the seed blog post's 5 x 5 matrix.

Used by the chapter "Repeated multiplication" and its tests. The numbers are those printed in
"Weight Initialization using eigenvalues" (Shreyans, 2020) as the output of
``np.random.randn(5, 5)``; the post gave no seed, so they are stored, not regenerated.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["seed_matrix"]


def seed_matrix() -> np.ndarray:
    """Return the seed blog post's 5 x 5 matrix A (a new float64 array).

    Its dominant eigenvalue is real and negative, about -2.6036: the post's "stretching
    factor" of about 2.60.

    Examples
    --------
    >>> A = seed_matrix()
    >>> A.shape
    (5, 5)
    >>> float(A[0, 0])
    -0.42739389
    """
    text = resources.files("eiginit").joinpath("data/seed-matrix.txt").read_text()
    return np.loadtxt(text.splitlines())
