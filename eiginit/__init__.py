"""eiginit: neural-network weight initialization explained through eigenvalues.

The package behind the executable textbook in ``book/``. Each module serves a part of the book:

- :mod:`eiginit.power`: repeated multiplication and power iteration (Part I).
- :mod:`eiginit.network`: a small numpy multilayer perceptron with backward pass and Jacobian
  (Parts III and IV).
- :mod:`eiginit.plotting`: the book's single plotting style.
- :mod:`eiginit.data`: the seed blog post's matrix.

Every public function checks its input and raises :class:`TypeError` or :class:`ValueError`
saying what it received and what it expected; every function that draws takes an explicit
``rng: numpy.random.Generator``.
"""

from eiginit.data import seed_matrix
from eiginit.network import (
    ACTIVATIONS,
    MLP,
    ForwardPass,
    Gradients,
    activation_derivative,
    apply_activation,
)
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

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "PALETTE",
    "ForwardPass",
    "Gradients",
    "PowerIterationResult",
    "Trajectory",
    "activation_derivative",
    "apply_activation",
    "dominant_is_real",
    "iterate",
    "normalize_spectral_radius",
    "power_iteration",
    "seed_matrix",
    "spectral_radius",
    "use_book_style",
]
