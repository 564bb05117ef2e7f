"""fit's learning-rate schedule: warm-up equals hand-written descent, per-replica rows, checks."""

import numpy as np
import pytest

from eiginit import initializers as ini
from eiginit.datasets import Dataset
from eiginit.models.network import MLP
from eiginit.training.engine import MLPModel, fit


def blobs(n=96, classes=3, features=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((classes, features))
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.standard_normal((n, features))
    a, b = n // 2, 3 * n // 4
    return Dataset(x[:a], y[:a], x[b:], y[b:], classes, "blobs", x_val=x[a:b], y_val=y[a:b])


def stacked(k, dtype=np.float64):
    nets = [
        MLP.create((4, 12, 3), "tanh", ini.lecun_normal, rng=np.random.default_rng(s))
        for s in range(k)
    ]
    return MLPModel.from_networks(nets, dtype=dtype)


def by_hand(model, params, data, rates, momentum=0.0):
    """Full-batch heavy ball written out: v <- mu v + g, theta <- theta - eta_t v."""
    work = [p.copy() for p in params]
    velocity = [np.zeros_like(p) for p in params]
    R = params[0].shape[0]
    x = np.broadcast_to(data.x_train, (R, *data.x_train.shape))
    y = np.broadcast_to(data.y_train, (R, data.y_train.shape[0]))
    for t in range(rates.shape[1]):
        _, grads = model.loss_and_gradients(work, x, y)
        for p, g, v in zip(work, grads, velocity, strict=True):
            v *= momentum
            v += g
            p -= rates[:, t].reshape((R,) + (1,) * (p.ndim - 1)) * v
    return work


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_linear_warm_up_equals_hand_written_gradient_descent(momentum):
    model, params = stacked(2)
    data, steps, T = blobs(), 6, 4
    lr = np.array([0.2, 0.5])

    def warm(t):
        return min(1.0, (t + 1) / T)

    result = fit(model, params, data, lr=lr, seeds=[0, 1], optimizer="sgd", momentum=momentum,
                 epochs=steps, full_batch=True, lr_schedule=warm)  # fmt: skip
    ramp = np.minimum(1.0, (np.arange(steps) + 1) / T)
    expected = by_hand(model, params, data, lr[:, None] * ramp[None, :], momentum)
    for a, b in zip(result.final_params, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the schedule changed something: a constant rate ends elsewhere
    constant = fit(model, params, data, lr=lr, seeds=[0, 1], optimizer="sgd", momentum=momentum,
                   epochs=steps, full_batch=True)  # fmt: skip
    assert not np.allclose(constant.final_params[0], result.final_params[0])


def test_per_replica_rows_equal_separate_runs_and_callable_equals_array():
    model, params = stacked(3)
    data, steps = blobs(), 5
    rows = np.array([np.ones(steps), np.minimum(1, (np.arange(steps) + 1) / 3), np.zeros(steps)])
    together = fit(model, params, data, lr=0.3, seeds=[0, 1, 2], optimizer="sgd", momentum=0.0,
                   epochs=steps, full_batch=True, lr_schedule=rows)  # fmt: skip
    called = fit(model, params, data, lr=0.3, seeds=[0, 1, 2], optimizer="sgd", momentum=0.0,
                 epochs=steps, full_batch=True, lr_schedule=lambda t: rows[:, t])  # fmt: skip
    for r in range(3):
        alone = fit(model, [p[r : r + 1].copy() for p in params], data, lr=0.3, seeds=[r],
                    optimizer="sgd", momentum=0.0, epochs=steps, full_batch=True,
                    lr_schedule=rows[r])  # fmt: skip
        for a, b, c in zip(together.final_params, alone.final_params, called.final_params,
                           strict=True):  # fmt: skip
            np.testing.assert_allclose(a[r], b[0], rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(a[r], c[r])
    # a multiplier of zero at every step leaves replica 2 where it started
    for a, p in zip(together.final_params, params, strict=True):
        np.testing.assert_array_equal(a[2], p[2])


def test_constant_one_schedule_changes_nothing_minibatch_and_adam():
    model, params = stacked(2)
    data = blobs()
    plain = fit(model, params, data, lr=[1e-2, 3e-2], seeds=[4, 5], epochs=3, batch_size=16)
    ones = fit(model, params, data, lr=[1e-2, 3e-2], seeds=[4, 5], epochs=3, batch_size=16,
               lr_schedule=np.ones(3 * 3))  # fmt: skip
    for a, b in zip(plain.final_params, ones.final_params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_adam_first_step_scales_with_the_multiplier():
    # Adam's first step moves every coordinate by about eta * s_0, whatever the gradient.
    model, params = stacked(2)
    data = blobs()
    result = fit(model, params, data, lr=1e-3, seeds=[0, 1], epochs=1, full_batch=True,
                 lr_schedule=np.array([[1.0], [0.25]]))  # fmt: skip
    moved = [np.abs(result.final_params[0][r] - params[0][r]) for r in range(2)]
    np.testing.assert_allclose(np.median(moved[0]), 1e-3, rtol=1e-3)
    np.testing.assert_allclose(np.median(moved[1]), 2.5e-4, rtol=1e-3)


def test_a_diverged_replica_stays_frozen_under_a_schedule():
    model, params = stacked(2)
    data = blobs()
    result = fit(model, params, data, lr=[1e-2, 1e4], seeds=[0, 1], optimizer="sgd",
                 momentum=0.0, epochs=8, full_batch=True, diverge_above=10.0,
                 lr_schedule=lambda t: 1.0 + t)  # fmt: skip
    assert result.diverged.tolist() == [False, True]
    assert np.all(np.isfinite(result.final_params[0][1]))
    assert np.isnan(result.train_loss[1, -1])
    assert np.isfinite(result.train_loss[0, -1])


@pytest.mark.parametrize(
    ("schedule", "error", "match"),
    [
        ("warmup", TypeError, "lr_schedule must be a callable step -> multiplier or an array"),
        (True, TypeError, "lr_schedule must be a callable"),
        (np.ones(4), ValueError, r"lr_schedule must have shape \(3,\) .* got \(4,\)"),
        (np.ones((3, 3)), ValueError, r"lr_schedule must have shape \(3,\) .* or \(2, 3\)"),
        ([1.0, -0.5, 1.0], ValueError, "finite multipliers >= 0, got -0.5 at step 1"),
        ([1.0, 1.0, np.nan], ValueError, "finite multipliers >= 0, got nan at step 2"),
        ([1.0, "a", 1.0], TypeError, "lr_schedule must be a callable or an array of numbers"),
        (lambda t: [1.0, 1.0, 1.0], ValueError, r"lr_schedule\(0\) must return a number or one"),
        (lambda t: "x", TypeError, r"lr_schedule\(0\) must return a number or 2 numbers"),
        (lambda t: 1.0 - t, ValueError, r"lr_schedule\(t\) must give finite multipliers >= 0, "
         r"got -1.0 at step 2"),
    ],
)  # fmt: skip
def test_fit_refuses_a_bad_schedule_by_name(schedule, error, match):
    model, params = stacked(2)
    with pytest.raises(error, match=match):
        fit(model, params, blobs(), lr=0.1, seeds=[0, 1], optimizer="sgd", epochs=3,
            full_batch=True, lr_schedule=schedule)  # fmt: skip
