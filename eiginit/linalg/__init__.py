"""Linear algebra and random matrices.

Power iteration, the spectra of random matrices, subspace iteration, singular values of long
products, norms beyond the spectrum and Lyapunov exponents: the mathematics of Parts I and II,
with no network in it.
"""
