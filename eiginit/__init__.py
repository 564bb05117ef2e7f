"""eiginit: neural-network weight initialization explained through eigenvalues.

The package behind the executable textbook in ``book/``. Each module serves a part of the book:

- :mod:`eiginit.power`: repeated multiplication and power iteration (Part I).
- :mod:`eiginit.subspace`: subspace iteration and matrices with a chosen spectrum (Part I).
- :mod:`eiginit.norms`: the spectral norm and transient growth of matrix powers (Part I).
- :mod:`eiginit.spectra`: Gaussian matrices and the laws of their spectra (Part II).
- :mod:`eiginit.plotting`: the book's single plotting style.
- :mod:`eiginit.data`: the seed blog post's matrix.

Every public function checks its input and raises :class:`TypeError` or :class:`ValueError`
saying what it received and what it expected; every function that draws takes an explicit
``rng: numpy.random.Generator``.
"""

from eiginit.data import seed_matrix
from eiginit.norms import SpectralNormResult, spectral_norm, transient_growth
from eiginit.plotting import PALETTE, use_book_style
from eiginit.power import (
    PowerIterationResult,
    Trajectory,
    dominant_is_real,
    iterate,
    normalize_spectral_radius,
    power_iteration,
    spectral_radius,
)
from eiginit.spectra import (
    circular_law_cdf,
    expected_real_eigenvalues,
    ginibre,
    marchenko_pastur_pdf,
    prob_all_real,
    quarter_circle_pdf,
)
from eiginit.subspace import SubspaceIterationResult, matrix_with_spectrum, subspace_iteration

__version__ = "0.1.0"

__all__ = [
    "PALETTE",
    "PowerIterationResult",
    "SpectralNormResult",
    "SubspaceIterationResult",
    "Trajectory",
    "circular_law_cdf",
    "dominant_is_real",
    "expected_real_eigenvalues",
    "ginibre",
    "iterate",
    "marchenko_pastur_pdf",
    "matrix_with_spectrum",
    "normalize_spectral_radius",
    "power_iteration",
    "prob_all_real",
    "quarter_circle_pdf",
    "seed_matrix",
    "spectral_norm",
    "spectral_radius",
    "subspace_iteration",
    "transient_growth",
    "use_book_style",
]
