"""eiginit.theory.shattering: dy/dt along a line of inputs, with and without centring."""

from __future__ import annotations

import numpy as np
import pytest

from eiginit import ResidualStack
from eiginit.theory.shattering import line_input_gradients


@pytest.fixture(scope="module")
def line():
    rng = np.random.default_rng(11)
    n = 12
    t = np.sort(rng.uniform(-1, 1, 9))  # no input at the mean, where centred units sit on a kink
    a, b, r = rng.standard_normal((3, n))
    return rng, t, a, b, r, t[:, None] * a + b


@pytest.mark.parametrize("skip", [True, False])
def test_uncentred_gradients_match_the_reverse_mode_of_residual_stack(line, skip):
    rng, _, a, _, r, x0 = line
    stack = ResidualStack.create(12, 5, rng=rng, alpha=0.7, skip=skip, replicas=3)
    got = line_input_gradients(stack.weights[:, :, 0], x0, a, r, alpha=0.7, skip=skip)
    for depth in (1, 3, 5):
        sub = ResidualStack(stack.weights[:, :depth], stack.alpha[:, :depth], skip=skip)
        reverse = sub.backward(sub.forward(x0), np.broadcast_to(r, x0.shape)).inputs @ a
        np.testing.assert_allclose(got[depth - 1], reverse, rtol=1e-12, atol=1e-12)


def _centred_output(W, x, alpha, skip, stats):
    """The forward pass with the per-unit statistics held at `stats` (frozen batch norm)."""
    for layer in range(W.shape[1]):
        mean, inv_std = stats[layer]
        branch = np.maximum((x - mean) * inv_std, 0) @ np.swapaxes(W[:, layer], -1, -2)
        x = x + alpha * branch if skip else alpha * branch
    return x


def test_centred_gradients_match_finite_differences_with_frozen_statistics(line):
    rng, t, a, b, r, x0 = line
    W = np.sqrt(2 / 12) * rng.standard_normal((2, 4, 12, 12))
    got = line_input_gradients(W, x0, a, r, alpha=1.0, skip=True, centre=True)[-1]
    stats, x = [], np.broadcast_to(x0, (2, *x0.shape)).copy()  # the statistics of the line
    for layer in range(4):
        mean = x.mean(axis=1, keepdims=True)
        inv_std = 1 / np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
        stats.append((mean, inv_std))
        x = x + np.maximum((x - mean) * inv_std, 0) @ np.swapaxes(W[:, layer], -1, -2)
    h = 1e-6
    up = _centred_output(W, (t[:, None] + h) * a + b, 1.0, True, stats) @ r
    down = _centred_output(W, (t[:, None] - h) * a + b, 1.0, True, stats) @ r
    np.testing.assert_allclose(got, (up - down) / (2 * h), rtol=1e-5, atol=1e-6)


def test_centring_changes_the_answer(line):
    rng, _, a, _, r, x0 = line
    W = np.sqrt(2 / 12) * rng.standard_normal((1, 3, 12, 12))
    plain = line_input_gradients(W, x0, a, r, skip=False)
    centred = line_input_gradients(W, x0, a, r, skip=False, centre=True)
    assert not np.allclose(plain, centred)


def test_bad_input_is_refused(line):
    _, _, a, _, r, x0 = line
    W = np.zeros((1, 2, 12, 12))
    with pytest.raises(ValueError, match="4 dimensions"):
        line_input_gradients(W[0], x0, a, r)
    with pytest.raises(ValueError, match=r"shape \(B, 12\)"):
        line_input_gradients(W, x0[:, :5], a, r)
    with pytest.raises(ValueError, match="direction and readout"):
        line_input_gradients(W, x0, a[:5], r)
    with pytest.raises(TypeError, match="centre"):
        line_input_gradients(W, x0, a, r, centre="yes")
    with pytest.raises(ValueError, match="finite"):
        line_input_gradients(np.full_like(W, np.nan), x0, a, r)
    with pytest.raises(ValueError, match="overflow"):
        line_input_gradients(np.full((1, 400, 12, 12), 10.0), x0, a, r)
