"""The landing page's claims (book/index.md), checked at a small size.

A deep linear network with a fresh Gaussian matrix of standard deviation g / sqrt(n) at every
layer: the mean squared norm ratio is exactly g^(2L), and the log of one network's norm ratio
spreads by sqrt(L psi'(n/2) / 4), about sqrt(L / (2n)) (psi' the trigamma function).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest


def _log_norm_ratios(gain: float, n: int, depth: int, trials: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((trials, n))
    x = x0
    for _ in range(depth):
        x = np.einsum("tij,tj->ti", (gain / np.sqrt(n)) * rng.standard_normal((trials, n, n)), x)
    return np.log(np.linalg.norm(x, axis=1) / np.linalg.norm(x0, axis=1))


def _trigamma(x: float) -> float:
    # Asymptotic series, accurate to ~1e-9 for x >= 8.
    return 1 / x + 1 / (2 * x**2) + 1 / (6 * x**3) - 1 / (30 * x**5) + 1 / (42 * x**7)


@pytest.mark.parametrize("gain", [0.8, 1.0, 1.25])
def test_mean_squared_norm_ratio_is_gain_to_the_2L(gain):
    n, depth, trials = 32, 10, 1000
    squared = np.exp(2 * _log_norm_ratios(gain, n, depth, trials, seed=7))
    # Tolerance: 4 standard errors of the sample mean.
    se = squared.std(ddof=1) / np.sqrt(trials)
    assert abs(squared.mean() - gain ** (2 * depth)) < 4 * se


def test_log_norm_spread_is_about_sqrt_L_over_2n():
    n, depth, trials = 32, 10, 2000
    logs = _log_norm_ratios(1.0, n, depth, trials, seed=11)
    exact = np.sqrt(depth * _trigamma(n / 2) / 4)
    # Tolerance: 4 standard errors of a sample standard deviation, sd / sqrt(2 (N - 1)).
    assert abs(logs.std(ddof=1) - exact) < 4 * exact / np.sqrt(2 * (trials - 1))
    assert abs(exact - np.sqrt(depth / (2 * n))) < 0.02 * exact  # the page's approximation
    # The typical network sits below g^L: the mean log ratio is about -L / (2n) = -0.16, some
    # 17 standard errors (0.4 / sqrt(2000)) below 0.
    assert logs.mean() < 0


# --- the landing page lists the chapters once --------------------------------------------------

_INDEX = Path(__file__).resolve().parents[1] / "book" / "index.md"


def test_landing_page_lists_the_chapters_once_in_its_chapter_map():
    """The toctrees feed the sidebar only (hidden); the chapter map is the page's one list."""
    text = _INDEX.read_text()
    trees = re.findall(r"```\{toctree\}\n(.*?)```", text, re.S)
    assert len(trees) >= 5
    assert all(re.search(r"^:hidden:$", tree, re.M) for tree in trees)
    assert "\n## Contents\n" not in text
    assert text.count("```{chapter-map}") == 1


def test_parts_are_numbered_and_guide_and_back_matter_are_not():
    text = _INDEX.read_text()
    trees = re.findall(r"```\{toctree\}\n:caption: ([^\n]*)\n(.*?)```", text, re.S)
    numbered = [caption for caption, body in trees if re.search(r"^:numbered: 1$", body, re.M)]
    assert numbered
    assert all(caption.startswith("Part ") for caption in numbered)
    assert [c for c, _ in trees if c.startswith("Part ")] == numbered
    assert "For contributors" in [c for c, _ in trees]
