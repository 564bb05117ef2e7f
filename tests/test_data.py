from __future__ import annotations

import numpy as np

from eiginit import seed_matrix


def test_seed_matrix_matches_the_published_spectrum() -> None:
    A = seed_matrix()
    assert A.shape == (5, 5)
    singular_values = np.linalg.svd(A, compute_uv=False)
    published = [4.12847869, 2.05389714, 1.64001062, 0.80533461, 0.56135444]
    assert np.allclose(singular_values, published, atol=1e-7)


def test_seed_matrix_returns_a_fresh_copy() -> None:
    A = seed_matrix()
    A[0, 0] = 99.0
    assert seed_matrix()[0, 0] != 99.0
