"""Tests for eiginit.models.residual: residual stacks and normalization at initialization.

Also the residual classifier trained through the one engine
(:class:`eiginit.training.engine.ResidualModel`, :func:`fit`).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit.datasets import Dataset
from eiginit.models.residual import (
    SCHEMES,
    ResidualClassifier,
    ResidualStack,
    batch_norm,
    fixup_scale,
    layer_norm,
    layer_norm_vjp,
    mean_square_profile,
    residual_classifier,
    residual_variance,
)
from eiginit.training.engine import ResidualModel, fit

CONFIGS = [  # (branch_layers, norm, post_norm, skip)
    (1, None, False, True),
    (2, None, False, True),
    (2, "batch", False, True),
    (2, "layer", False, True),
    (1, "layer", True, True),
    (2, None, False, False),
    (1, "batch", False, False),
]


def central_difference(f, array: np.ndarray, index: tuple[int, ...], eps: float = 1e-6) -> float:
    array[index] += eps
    up = f()
    array[index] -= 2 * eps
    down = f()
    array[index] += eps
    return (up - down) / (2 * eps)


# --- forward and backward -----------------------------------------------------------------


@pytest.mark.parametrize(("m", "norm", "post_norm", "skip"), CONFIGS)
def test_backward_matches_finite_differences(m, norm, post_norm, skip) -> None:
    rng = np.random.default_rng(3)
    stack = ResidualStack.create(
        5, 3, rng=rng, branch_layers=m, alpha=0.7, replicas=2, norm=norm,
        post_norm=post_norm, skip=skip,
    )  # fmt: skip
    x = rng.standard_normal((2, 4, 5))
    g_out = rng.standard_normal((2, 4, 5))
    grads = stack.backward(stack.forward(x), g_out)

    def loss() -> float:
        return float(np.sum(stack(x) * g_out))

    for index in [(0, 0, 0, 1, 2), (1, 2, m - 1, 4, 0), (1, 1, 0, 2, 3)]:
        numeric = central_difference(loss, stack.weights, index)
        assert grads.weights[index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)
    for index in [(0, 0), (1, 2)]:
        numeric = central_difference(loss, stack.alpha, index)
        assert grads.alpha[index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)
    for index in [(0, 1, 2), (1, 3, 4)]:
        numeric = central_difference(loss, x, index)
        assert grads.inputs[index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize(("m", "skip"), [(1, True), (2, True), (3, False)])
def test_jacobian_matches_finite_differences(m, skip) -> None:
    rng = np.random.default_rng(4)
    stack = ResidualStack.create(6, 4, rng=rng, branch_layers=m, alpha=0.6, skip=skip)
    x = rng.standard_normal((1, 6))
    J = stack.jacobian(x)[0, 0]
    numeric = np.array(
        [(stack(x + 1e-6 * e)[0, 0] - stack(x - 1e-6 * e)[0, 0]) / 2e-6 for e in np.eye(6)]
    ).T
    np.testing.assert_allclose(J, numeric, rtol=1e-6, atol=1e-8)


def test_forward_states_and_call_agree() -> None:
    stack = ResidualStack.create(4, 5, rng=np.random.default_rng(0), norm="batch", replicas=3)
    x = np.random.default_rng(1).standard_normal((6, 4))
    fp = stack.forward(x)
    assert len(fp.states) == 6
    np.testing.assert_allclose(fp.output, stack(x))
    assert fp.output.shape == (3, 6, 4)


@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 3), st.integers(0, 10**6))
@settings(max_examples=25, deadline=None)
def test_zero_branch_multiplier_is_an_exact_isometry(n, depth, m, seed) -> None:
    # SkipInit / ReZero: alpha = 0 makes every block the identity, so J = I exactly.
    rng = np.random.default_rng(seed)
    stack = ResidualStack.create(n, depth, rng=rng, branch_layers=m, alpha=0.0)
    x = rng.standard_normal((2, n))
    np.testing.assert_array_equal(stack(x)[0], x)
    np.testing.assert_array_equal(stack.jacobian(x)[0], np.broadcast_to(np.eye(n), (2, n, n)))


def test_plain_stack_is_a_relu_network() -> None:
    # skip=False, one-layer branches: x_{l+1} = W relu(x_l), the chapter-7 network's layer.
    rng = np.random.default_rng(5)
    stack = ResidualStack.create(5, 3, rng=rng, skip=False)
    x = rng.standard_normal((2, 5))
    expected = x
    for W in stack.weights[0, :, 0]:
        expected = np.maximum(expected, 0) @ W.T
    np.testing.assert_allclose(stack(x)[0], expected)


def test_block_jacobian_eigenvalues_sit_in_a_disk_around_one() -> None:
    # One block's Jacobian is I + alpha W D. D keeps the k active units, so W D has n - k zero
    # eigenvalues (lambda = 1 exactly) and, by the circular law, k more filling a disk of
    # radius about 1 (entries N(0, 2/n) = N(0, 1/k) with k near n/2): radius alpha around 1.
    n, alpha = 400, 0.3
    stack = ResidualStack.create(n, 1, rng=np.random.default_rng(6), alpha=alpha)
    x = np.random.default_rng(7).standard_normal((1, n))
    lam = np.linalg.eigvals(stack.jacobian(x)[0, 0])
    radius = np.abs(lam - 1)
    active = int(np.sum(x > 0))
    assert int(np.sum(radius < 1e-9)) == n - active
    spread = np.sort(radius)[n - active :] / alpha
    assert spread.max() < 1.15
    # Circular law: a share r^2 of the disk's eigenvalues lies within radius r.
    assert abs(np.mean(spread < 0.5) - 0.25) < 0.05


# --- normalization --------------------------------------------------------------------------


def test_batch_and_layer_norm_standardize() -> None:
    x = np.random.default_rng(8).normal(3.0, 2.0, size=(50, 7))
    z = batch_norm(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.var(axis=0), 1, rtol=1e-4)
    z = layer_norm(x)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.var(axis=1), 1, rtol=1e-4)


def test_layer_norm_vjp_matches_finite_differences() -> None:
    rng = np.random.default_rng(9)
    x, g = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    vjp = layer_norm_vjp(x, g)
    for index in [(0, 0), (2, 4), (1, 2)]:
        numeric = central_difference(lambda: float(np.sum(layer_norm(x) * g)), x, index)
        assert vjp[index] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


# --- closed forms -------------------------------------------------------------------------


def test_residual_variance_closed_form() -> None:
    np.testing.assert_allclose(residual_variance(0.5, 4), 1.25 ** np.arange(5))
    assert residual_variance(1 / np.sqrt(64), 64)[-1] == pytest.approx((1 + 1 / 64) ** 64)
    with pytest.raises(ValueError, match="overflows"):
        residual_variance(1.0, 2000)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_first_block_multiplies_the_mean_square_by_one_plus_alpha_squared(alpha) -> None:
    # Exact at any width for Gaussian x_0: E||x_1||^2 = (1 + alpha^2) E||x_0||^2.
    ratios = [
        (lambda p: p[1] / p[0])(
            mean_square_profile(16, 1, alpha, rng=np.random.default_rng(s), trials=50, batch=8)
        )
        for s in range(40)
    ]
    mean, se = np.mean(ratios), np.std(ratios, ddof=1) / np.sqrt(len(ratios))
    assert abs(mean - (1 + alpha**2)) < 4 * se


def test_deep_growth_approaches_the_closed_form_from_above() -> None:
    # (1 + alpha^2)^L is the wide limit; at width n each block adds a relative excess of
    # order alpha^2 / n (the branch input is not exactly symmetric), which the chapter
    # measures as below 1/n per block.
    L = 8
    ratios = np.array(
        [
            (lambda p: p[-1] / p[0])(
                mean_square_profile(64, L, 1.0, rng=np.random.default_rng(s), trials=40, batch=8)
            )
            for s in range(30)
        ]
    )
    mean, se = ratios.mean(), ratios.std(ddof=1) / np.sqrt(len(ratios))
    assert mean > 2**L - 4 * se
    assert mean < 2**L * (1 + 1 / 64) ** L + 4 * se


def test_batch_norm_branch_grows_linearly() -> None:
    # De & Smith 2020: a batch-normalized branch adds unit variance per block: 1 + alpha^2 l.
    profiles = np.array(
        [
            mean_square_profile(64, 12, 1.0, rng=np.random.default_rng(s), trials=8, norm="batch")
            for s in range(20)
        ]
    )
    mean = profiles.mean(axis=0)
    se = profiles.std(axis=0, ddof=1) / np.sqrt(len(profiles))
    expected = 1 + np.arange(13)
    assert np.all(np.abs(mean - expected) < 4 * se + 0.01 * expected)


def test_pre_ln_branch_adds_n_sigma_squared_over_two() -> None:
    # Pre-LN, one-layer branch W relu(LN(x)) with entries N(0, s^2): each block adds
    # n s^2 / 2 to the mean square of x_l.
    n, L, s = 32, 6, 0.1
    stack = ResidualStack.create(n, L, rng=np.random.default_rng(10), gain=s * np.sqrt(n),
                                 replicas=200, norm="layer")  # fmt: skip
    x0 = np.random.default_rng(11).standard_normal((8, n))
    ms = [float(np.mean(x**2)) for x in stack.forward(x0).states]
    per_replica = np.mean(stack(x0) ** 2, axis=(1, 2)) - np.mean(x0**2)
    se = per_replica.std(ddof=1) / np.sqrt(len(per_replica))
    assert abs((ms[-1] - ms[0]) - L * n * s**2 / 2) < 4 * se


def test_fixup_scale() -> None:
    assert fixup_scale(16, 2) == 0.25
    assert fixup_scale(27, 4) == pytest.approx(27 ** (-1 / 6))
    with pytest.raises(ValueError, match="branch_layers"):
        fixup_scale(16, 1)


# --- training -----------------------------------------------------------------------------


def tiny_data(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, 6)) * 2
    y = rng.integers(0, 3, 300)
    x = (centers[y] + rng.standard_normal((300, 6))).astype(np.float32)
    return Dataset(x[:200], y[:200], x[250:], y[250:], 3, "blobs", x[200:250], y[200:250])


def test_schemes_initialize_as_documented() -> None:
    net = residual_classifier(list(SCHEMES), inputs=6, classes=3, width=8, depth=4,
                              rng=np.random.default_rng(0))  # fmt: skip
    alpha = net.stack.alpha[:, 0].tolist()
    assert alpha == pytest.approx([1.0, 0.5, 1.0, 0.0])
    fixup = SCHEMES.index("fixup")
    assert np.all(net.stack.weights[fixup, :, 1] == 0)
    assert np.all(net.w_out[fixup] == 0)
    assert net.train_alpha.tolist() == [False, False, False, True]


def test_training_learns_separable_blobs_with_every_scheme() -> None:
    data = tiny_data()
    net = residual_classifier(list(SCHEMES) * 2, inputs=6, classes=3, width=8, depth=4,
                              rng=np.random.default_rng(1))  # fmt: skip
    model, params = ResidualModel.from_network(net)
    result = fit(model, params, data, lr=1e-2, seeds=2, epochs=8, batch_size=128)
    assert not result.diverged.any()
    assert np.all(result.best_value > 0.7)  # chance is 1/3
    assert np.all(result.train_loss[:, -1] < result.train_loss[:, 0])
    # only ReZero's multipliers train (default_multipliers freeze the others)
    moved = np.any(result.final_params[3] != params[3], axis=1)
    assert moved.tolist() == [name == "rezero" for name in list(SCHEMES) * 2]


def test_training_marks_divergence_instead_of_returning_nan() -> None:
    data = tiny_data()
    net = residual_classifier(["kaiming", "fixup"], inputs=6, classes=3, width=8, depth=4,
                              rng=np.random.default_rng(3))  # fmt: skip
    net.stack.weights[0] *= 1e12  # overflows float32 at once
    model, params = ResidualModel.from_network(net)
    result = fit(model, params, data, lr=[1e-3, 1e-3], seeds=[4, 5], epochs=1)
    assert result.diverged.tolist() == [True, False]
    assert np.all(np.isnan(result.train_loss[0]))
    assert np.all(np.isnan(result.val_metric[0]))
    assert np.all(np.isfinite(result.train_loss[1]))
    assert np.all(np.isfinite(result.val_metric[1]))


def _classifier_with(stack: ResidualStack, *, inputs: int, classes: int, seed: int):
    """A residual classifier around any stack (normalized, Post-LN, plain), in float64."""
    rng = np.random.default_rng(seed)
    R, n = stack.weights.shape[0], stack.weights.shape[-1]
    return ResidualClassifier(
        rng.standard_normal((R, n, inputs)), 0.1 * rng.standard_normal((R, n)), stack,
        rng.standard_normal((R, classes, n)) / np.sqrt(n), 0.1 * rng.standard_normal((R, classes)),
        train_alpha=np.ones(R, dtype=bool),
    )  # fmt: skip


# Every stack the chapter builds, as a trained model: the plain ResNet (every scheme of
# residual_classifier), one block deep (the shallow baseline), Pre-LN and Post-LN, batch norm,
# and the plain network without skips.
MODEL_CONFIGS = [  # (depth, branch_layers, norm, post_norm, skip)
    (3, 2, None, False, True),
    (1, 2, None, False, True),
    (3, 1, "layer", False, True),
    (3, 1, "layer", True, True),
    (3, 2, "batch", False, True),
    (3, 2, None, False, False),
]


@pytest.mark.parametrize(("depth", "m", "norm", "post_norm", "skip"), MODEL_CONFIGS)
def test_residual_model_gradients_match_finite_differences(depth, m, norm, post_norm, skip):
    rng = np.random.default_rng(7)
    stack = ResidualStack.create(
        5, depth, rng=rng, branch_layers=m, alpha=0.8, replicas=2, norm=norm,
        post_norm=post_norm, skip=skip,
    )  # fmt: skip
    net = _classifier_with(stack, inputs=4, classes=3, seed=8)
    model, params = ResidualModel.from_network(net, dtype=np.float64)
    x = rng.standard_normal((2, 6, 4))
    y = rng.integers(0, 3, (2, 6))
    loss, grads = model.loss_and_gradients(params, x, y)
    assert loss.shape == (2,)

    def total() -> float:
        return float(model.loss_and_gradients(params, x, y)[0].sum())

    assert total() == pytest.approx(float(loss.sum()), rel=1e-14)
    probe = np.random.default_rng(9)
    for p, g in zip(params, grads, strict=True):
        assert g.shape == p.shape
        for _ in range(3):
            index = tuple(int(probe.integers(0, k)) for k in p.shape)
            numeric = central_difference(total, p, index)
            assert g[index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)
    # predict on a shared batch gives the same logits as the training pass (no batch norm:
    # batch statistics depend on the batch)
    if norm != "batch":
        shared = x[0]
        both = model.predict(params, shared)
        loss_shared = model.loss(both, y[0])
        again, _ = model.loss_and_gradients(
            params, np.stack([shared, shared]), np.stack([y[0]] * 2)
        )
        np.testing.assert_allclose(loss_shared, again, rtol=1e-12)


def test_residual_model_matches_torch_autograd_for_pre_and_post_ln() -> None:
    torch = pytest.importorskip("torch")
    for post_norm in (False, True):
        rng = np.random.default_rng(11)
        stack = ResidualStack.create(6, 4, rng=rng, branch_layers=2, alpha=0.5, norm="layer",
                                     post_norm=post_norm)  # fmt: skip
        net = _classifier_with(stack, inputs=3, classes=4, seed=12)
        model, params = ResidualModel.from_network(net, dtype=np.float64)
        x = rng.standard_normal((1, 10, 3))
        y = rng.integers(0, 4, (1, 10))
        loss, grads = model.loss_and_gradients(params, x, y)

        w_in, b_in, W, alpha, w_out, b_out = (torch.tensor(p[0], requires_grad=True)
                                              for p in params)  # fmt: skip

        def ln(u):
            u = u - u.mean(-1, keepdim=True)
            return u / torch.sqrt((u**2).mean(-1, keepdim=True) + 1e-5)

        h = torch.tensor(x[0]) @ w_in.T + b_in
        for block in range(4):
            u = h
            for j in range(2):  # u_j = W_j relu(LN(u_{j-1})), the Pre-LN branch
                u = torch.relu(ln(u)) @ W[block, j].T
            h = h + alpha[block] * u
            if post_norm:
                h = ln(h)
        z = torch.relu(h) @ w_out.T + b_out
        ref = torch.nn.functional.cross_entropy(z, torch.tensor(y[0]))
        ref.backward()
        assert float(loss[0]) == pytest.approx(float(ref.detach()), rel=1e-12)
        for g, t in zip(grads, (w_in, b_in, W, alpha, w_out, b_out), strict=True):
            np.testing.assert_allclose(g[0], t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_one_shared_seed_walks_every_replica_through_one_order() -> None:
    # What the removed train_residual did (one minibatch order for all replicas) is one seed
    # repeated: identical replicas then stay identical, distinct seeds part them.
    data = tiny_data(1)
    net = residual_classifier(["scaled"] * 3, inputs=6, classes=3, width=8, depth=3,
                              rng=np.random.default_rng(5))  # fmt: skip
    model, params = ResidualModel.from_network(net, dtype=np.float64)
    params = [np.ascontiguousarray(np.broadcast_to(p[:1], p.shape)) for p in params]
    result = fit(model, params, data, lr=1e-2, seeds=[3, 3, 4], epochs=2, batch_size=32)
    np.testing.assert_array_equal(result.train_loss[0], result.train_loss[1])
    assert not np.allclose(result.train_loss[0], result.train_loss[2])


# --- input checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: ResidualStack.create(0, 3, rng=np.random.default_rng(0)), ValueError, "width"),
        (lambda: ResidualStack.create(4, 0, rng=np.random.default_rng(0)), ValueError, "depth"),
        (lambda: ResidualStack.create(4, 2, rng=0), TypeError, "Generator"),
        (lambda: ResidualStack.create(4, 2, rng=np.random.default_rng(0), alpha=-1.0),
         ValueError, "alpha"),
        (lambda: ResidualStack.create(4, 2, rng=np.random.default_rng(0), norm="group"),
         ValueError, "norm"),
        (lambda: ResidualStack(np.zeros((1, 2, 1, 3, 4)), np.zeros((1, 2))), ValueError,
         "square"),
        (lambda: ResidualStack(np.zeros((2, 3, 3)), np.zeros((1, 2))), TypeError, "shape"),
        (lambda: ResidualStack(np.zeros((1, 2, 1, 3, 3)), np.zeros((1, 3))), ValueError,
         "alpha"),
        (lambda: batch_norm(np.ones((1, 3))), ValueError, "at least 2"),
        (lambda: batch_norm("abc"), TypeError, "real numbers"),
        (lambda: layer_norm([[1.0, np.nan]]), ValueError, "finite"),
        (lambda: residual_variance(1.0, 0), ValueError, "depth"),
        (lambda: mean_square_profile(4, 2, 1.0, rng=np.random.default_rng(0), batch=1,
                                     norm="batch"), ValueError, "batch"),
        (lambda: residual_classifier("lsuv", inputs=2, classes=2, width=2, depth=2,
                                     rng=np.random.default_rng(0)), ValueError, "schemes"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_stack_refuses_bad_shapes_and_normalized_jacobians() -> None:
    stack = ResidualStack.create(4, 2, rng=np.random.default_rng(0), replicas=2)
    with pytest.raises(ValueError, match="4 features"):
        stack(np.ones((3, 5)))
    with pytest.raises(ValueError, match="2 replicas"):
        stack(np.ones((3, 3, 4)))
    with pytest.raises(ValueError, match="output's shape"):
        stack.backward(stack.forward(np.ones((3, 4))), np.ones((2, 4)))
    bn = ResidualStack.create(4, 2, rng=np.random.default_rng(0), norm="batch")
    with pytest.raises(ValueError, match="without normalization"):
        bn.jacobian(np.ones((3, 4)))
    with pytest.raises(ValueError, match="at least 2 inputs"):
        bn(np.ones((1, 4)))


def test_overflow_is_an_error_not_inf() -> None:
    stack = ResidualStack.create(8, 3, rng=np.random.default_rng(0), gain=1e120)
    with pytest.raises(ValueError, match="overflow"):
        stack(np.ones((2, 8)))
    with pytest.raises(ValueError, match="overflow"):
        mean_square_profile(8, 200, 30.0, rng=np.random.default_rng(0))


def test_batch_norm_makes_the_gradient_blind_to_the_weight_scale() -> None:
    # x_{l+1} = W relu(BN(x_l)): scaling every W by c scales x_l (l >= 1) by c, and BN's
    # backward divides by c again, so the gradient at every block l >= 1 is unchanged (up to
    # BN's epsilon); the plain stack's gradient grows towards the input whatever the scale.
    rng = np.random.default_rng(12)
    stack = ResidualStack.create(32, 6, rng=rng, skip=False, norm="batch")
    scaled = ResidualStack(4 * stack.weights, stack.alpha, skip=False, norm="batch")
    x, g = rng.standard_normal((2, 16, 32))
    one = stack.backward(stack.forward(x), g).states
    four = scaled.backward(scaled.forward(x), g).states
    for a, b in zip(one[1:], four[1:], strict=True):
        np.testing.assert_allclose(b, a, atol=1e-3 * np.abs(a).max())
    np.testing.assert_allclose(four[0], 4 * one[0], atol=4e-3 * np.abs(one[0]).max())


def test_skips_keep_input_gradients_correlated() -> None:
    # Shattered gradients: at depth 64 the plain network's gradient dy/dt decorrelates between
    # neighbouring inputs, the residual stack's does not.
    rng = np.random.default_rng(13)
    n, L = 32, 64
    t = np.linspace(-2, 2, 256)
    a, b, w = rng.standard_normal((3, n))
    x0 = t[:, None] * a + b

    def correlation(stack: ResidualStack) -> float:
        g = stack.backward(stack.forward(x0), np.broadcast_to(w, x0.shape)).inputs @ a
        g = g - g.mean(axis=1, keepdims=True)
        return float(np.mean((g[:, 1:] * g[:, :-1]).sum(axis=1) / (g**2).sum(axis=1)))

    plain = ResidualStack.create(n, L, rng=rng, skip=False, replicas=6)
    resid = ResidualStack.create(n, L, rng=rng, alpha=1 / np.sqrt(L), replicas=6)
    assert correlation(resid) > 0.9
    assert correlation(plain) < correlation(resid) - 0.2


def test_one_generator_per_replica_draws_each_replica_alone() -> None:
    # The comparison protocol's build(rngs): replica r comes from rngs[r] only, whatever the
    # number of replicas drawn beside it.
    names = ["kaiming", "fixup", "rezero"]
    gens = lambda: [np.random.default_rng(s) for s in (10, 11, 12)]  # noqa: E731
    together = residual_classifier(names, inputs=5, classes=3, width=6, depth=3, rng=gens())
    for r, name in enumerate(names):
        alone = residual_classifier(name, inputs=5, classes=3, width=6, depth=3,
                                    rng=gens()[r])  # fmt: skip
        for a, b in zip(together.parameters(), alone.parameters(), strict=True):
            np.testing.assert_array_equal(a[r], b[0])
        assert together.train_alpha[r] == alone.train_alpha[0]
    assert together.stack.weights.dtype == np.float32
    # a different generator for one replica leaves the others as they were
    other = gens()
    other[1] = np.random.default_rng(99)
    changed = residual_classifier(names, inputs=5, classes=3, width=6, depth=3, rng=other)
    np.testing.assert_array_equal(changed.w_in[[0, 2]], together.w_in[[0, 2]])
    assert not np.array_equal(changed.w_in[1], together.w_in[1])


@pytest.mark.parametrize(
    "rng",
    [[np.random.default_rng(0)], [np.random.default_rng(0), 1], 0, "ab", None],
    ids=["too-few", "not-a-generator", "int", "str", "none"],
)
def test_residual_classifier_refuses_generators_that_do_not_fit(rng) -> None:
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator or a sequence of 2"):
        residual_classifier(["fixup", "rezero"], inputs=4, classes=2, width=4, depth=1, rng=rng)


@pytest.mark.parametrize(("norm", "post_norm"), [("layer", False), ("layer", True)])
def test_fit_trains_layer_normalized_stacks_replica_by_replica(norm, post_norm) -> None:
    # Pre-LN and Post-LN classifiers through fit: the loss falls, and replica r trained beside
    # another equals its run alone (its own seed, its own rate).
    rng = np.random.default_rng(13)
    stack = ResidualStack.create(6, 3, rng=rng, branch_layers=2, alpha=0.5, replicas=2,
                                 norm=norm, post_norm=post_norm)  # fmt: skip
    net = _classifier_with(stack, inputs=6, classes=3, seed=14)
    model, params = ResidualModel.from_network(net, dtype=np.float64)
    data = tiny_data(2)
    together = fit(model, params, data, lr=[3e-3, 1e-2], seeds=[1, 2], epochs=3, batch_size=32)
    assert np.all(together.train_loss[:, -1] < together.train_loss[:, 0])
    for r in range(2):
        alone = fit(ResidualModel(model.template, model.train_alpha[r : r + 1]),
                    [p[r : r + 1].copy() for p in params], data, lr=[3e-3, 1e-2][r],
                    seeds=[r + 1], epochs=3, batch_size=32)  # fmt: skip
        np.testing.assert_allclose(together.train_loss[r], alone.train_loss[0], rtol=1e-12)
        for a, b in zip(together.final_params, alone.final_params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-12, atol=1e-14)
