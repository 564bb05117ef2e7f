"""Tests for eiginit.models.network: activations, forward and backward passes, the Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit.models.network import (
    ACTIVATIONS,
    MLP,
    ForwardPass,
    activation_derivative,
    apply_activation,
)


def gaussian_init(shape: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
    """LeCun-style N(0, 1/fan_in), enough for these tests (initializers are tested elsewhere)."""
    return rng.standard_normal(shape) / np.sqrt(shape[1])


def orthogonal_init(shape: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal(shape))
    return q * np.sign(np.diag(r))


def small_net(activation: str, *, seed: int = 0, output: str = "linear") -> MLP:
    return MLP.create(
        [4, 6, 5, 3],
        activation,
        gaussian_init,
        rng=np.random.default_rng(seed),
        bias_std=0.3,
        output_activation=output,
    )


def inputs(batch: int = 5, n: int = 4, seed: int = 1) -> np.ndarray:
    # Away from ReLU's kink at 0 with probability 1: finite differences see a smooth function.
    return np.random.default_rng(seed).standard_normal((batch, n))


# --- Activations ---


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_central_difference(name: str) -> None:
    h = np.linspace(-3, 3, 61) + 0.013  # avoid h = 0 exactly (kinks)
    eps = 1e-6
    numeric = (apply_activation(name, h + eps) - apply_activation(name, h - eps)) / (2 * eps)
    np.testing.assert_allclose(activation_derivative(name, h), numeric, rtol=1e-6, atol=1e-8)


def test_activation_values() -> None:
    h = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(apply_activation("linear", h), h)
    np.testing.assert_allclose(apply_activation("relu", h), [0.0, 0.0, 1.5])
    np.testing.assert_allclose(apply_activation("leaky_relu", h), [-0.02, 0.0, 1.5])
    np.testing.assert_allclose(apply_activation("sigmoid", [0.0]), [0.5])
    # SELU: scale * alpha * (e^h - 1) for h < 0, torch.nn.SELU's constants.
    np.testing.assert_allclose(
        apply_activation("selu", h),
        [1.0507009873554805 * 1.6732632423543772 * np.expm1(-2.0), 0.0, 1.0507009873554805 * 1.5],
    )


def test_sigmoid_does_not_overflow() -> None:
    out = apply_activation("sigmoid", np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 1.0])


def test_float32_stays_float32() -> None:
    h = np.ones(3, dtype=np.float32)
    for name in ACTIVATIONS:
        assert apply_activation(name, h).dtype == np.float32
        assert activation_derivative(name, h).dtype == np.float32


def test_unknown_activation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown activation 'mish'; expected one of linear"):
        apply_activation("mish", [1.0])
    with pytest.raises(TypeError, match="must be a string"):
        activation_derivative(3, [1.0])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        small_net("swish")
    with pytest.raises(ValueError, match="unknown output_activation 'softmax'"):
        small_net("tanh", output="softmax")


# --- Gradients against finite differences, every activation ---


def numeric_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f at x, one coordinate at a time."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        grad[idx] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_backward_matches_finite_differences(name: str) -> None:
    net = small_net(name, output=name)
    x = inputs()
    c = np.random.default_rng(2).standard_normal((5, 3))  # loss = sum(c * output)
    grads = net.backward(net.forward(x), c)

    def loss_with_weight(layer: int, W: np.ndarray) -> float:
        return float(np.sum(c * net.with_layer(layer, weight=W)(x)))

    def loss_with_bias(layer: int, b: np.ndarray) -> float:
        return float(np.sum(c * net.with_layer(layer, bias=b)(x)))

    for layer in range(net.depth):
        numeric_W = numeric_gradient(lambda W, k=layer: loss_with_weight(k, W), net.weights[layer])
        numeric_b = numeric_gradient(lambda b, k=layer: loss_with_bias(k, b), net.biases[layer])
        np.testing.assert_allclose(grads.weights[layer], numeric_W, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(grads.biases[layer], numeric_b, rtol=1e-5, atol=1e-7)
    numeric_x = numeric_gradient(lambda z: float(np.sum(c * net(z))), x)
    np.testing.assert_allclose(grads.inputs, numeric_x, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_jacobian_matches_finite_differences(name: str) -> None:
    net = small_net(name)
    x = inputs(batch=3)
    J = net.jacobian(x)
    assert J.shape == (3, 3, 4)
    eps = 1e-6
    for i in range(4):
        step = np.zeros(4)
        step[i] = eps
        column = (net(x + step) - net(x - step)) / (2 * eps)
        np.testing.assert_allclose(J[:, :, i], column, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_backward_is_the_transposed_jacobian(name: str) -> None:
    # The input gradient of sum(c * output) is c J for every input: a vector-Jacobian product.
    net = small_net(name)
    x = inputs()
    c = np.random.default_rng(3).standard_normal((5, 3))
    grads = net.backward(net.forward(x), c)
    np.testing.assert_allclose(grads.inputs, np.einsum("bo,boi->bi", c, net.jacobian(x)))


def test_forward_keeps_preactivations() -> None:
    net = small_net("tanh")
    x = inputs()
    fp = net.forward(x)
    assert len(fp.preactivations) == 3
    assert len(fp.activations) == 4
    np.testing.assert_allclose(fp.activations[0], x)
    h1 = x @ net.weights[0].T + net.biases[0]
    np.testing.assert_allclose(fp.preactivations[0], h1)
    np.testing.assert_allclose(fp.activations[1], np.tanh(h1))
    # Last layer is linear by default.
    np.testing.assert_allclose(fp.output, fp.preactivations[-1])


# --- Construction and shapes ---


def test_create_shapes_follow_pytorch() -> None:
    net = small_net("relu")
    assert net.sizes == (4, 6, 5, 3)
    assert net.depth == 3
    assert [W.shape for W in net.weights] == [(6, 4), (5, 6), (3, 5)]
    assert [b.shape for b in net.biases] == [(6,), (5,), (3,)]
    assert net.dtype == np.float64


def test_create_is_reproducible_and_zero_bias_by_default() -> None:
    a = MLP.create([3, 4, 2], "tanh", gaussian_init, rng=np.random.default_rng(7))
    b = MLP.create([3, 4, 2], "tanh", gaussian_init, rng=np.random.default_rng(7))
    for Wa, Wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
    assert all(not np.any(bias) for bias in a.biases)


def test_float32_network() -> None:
    net = MLP.create(
        [3, 4, 2], "relu", gaussian_init, rng=np.random.default_rng(0), dtype=np.float32
    )
    x = inputs(n=3)
    fp = net.forward(x)
    assert net.dtype == np.float32
    assert fp.output.dtype == np.float32
    grads = net.backward(fp, np.ones((5, 2)))
    assert all(g.dtype == np.float32 for g in grads.weights)


def test_with_layer_rescales_one_layer_only() -> None:
    net = small_net("tanh")
    scaled = net.with_layer(1, weight=2 * net.weights[1])
    np.testing.assert_array_equal(scaled.weights[1], 2 * net.weights[1])
    np.testing.assert_array_equal(scaled.weights[0], net.weights[0])
    np.testing.assert_array_equal(scaled.biases[1], net.biases[1])
    assert scaled.activation == "tanh"


def test_network_is_frozen() -> None:
    net = small_net("tanh")
    with pytest.raises(AttributeError):
        net.activation = "relu"  # type: ignore[misc]


# --- Isometry of orthogonal linear networks (the chapter's first claim) ---


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 30), width=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_orthogonal_linear_network_is_an_isometry(depth: int, width: int, seed: int) -> None:
    net = MLP.create(
        [width] * (depth + 1), "linear", orthogonal_init, rng=np.random.default_rng(seed)
    )
    s = net.jacobian_singular_values(inputs(batch=2, n=width, seed=seed))
    np.testing.assert_allclose(s, 1.0, atol=1e-12)


def test_linear_jacobian_is_the_product_of_weights() -> None:
    net = small_net("linear")
    product = net.weights[2] @ net.weights[1] @ net.weights[0]
    J = net.jacobian(inputs(batch=2))
    np.testing.assert_allclose(J[0], product)
    np.testing.assert_allclose(J[1], product)


def test_deep_gaussian_linear_network_has_vanishing_median_singular_value() -> None:
    # Saxe et al. (2014) / REFERENCES.md: L = 50, width 200, N(0, 1/n) weights give a median
    # singular value near 3e-8. At L = 20, n = 50 the spread is already many decades wide;
    # the median of log s has fluctuations of order 1 between draws, so we test decades.
    net = MLP.create([50] * 21, "linear", gaussian_init, rng=np.random.default_rng(0))
    s = net.jacobian_singular_values(np.zeros((1, 50)))[0]
    assert np.median(s) < 1e-2
    assert s.max() > 2.0


# --- Bad input ---


def test_mismatched_input_width() -> None:
    net = small_net("tanh")
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 4\).*got shape \(5, 3\)"):
        net.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        net(np.ones(4))
    with pytest.raises(TypeError, match="real numbers"):
        net.forward("abc")
    with pytest.raises(ValueError, match="finite"):
        net.forward(np.full((1, 4), np.nan))


def test_mismatched_weight_shapes() -> None:
    with pytest.raises(ValueError, match=r"weights\[1\] has shape \(2, 4\).*expected fan_in = 3"):
        MLP((np.ones((3, 2)), np.ones((2, 4))), (np.zeros(3), np.zeros(2)), "tanh")
    with pytest.raises(ValueError, match=r"biases\[0\] must be an array of shape \(3,\)"):
        MLP((np.ones((3, 2)),), (np.zeros(2),), "tanh")
    with pytest.raises(ValueError, match="one bias per weight matrix"):
        MLP((np.ones((3, 2)),), (), "tanh")
    with pytest.raises(ValueError, match="at least one layer"):
        MLP((), (), "tanh")
    with pytest.raises(TypeError, match=r"weights\[0\] must be a 2-D float numpy array"):
        MLP(([[1.0]],), (np.zeros(1),), "tanh")
    with pytest.raises(TypeError, match="share one dtype"):
        MLP(
            (np.ones((2, 2)), np.ones((2, 2), dtype=np.float32)),
            (np.zeros(2), np.zeros(2, dtype=np.float32)),
            "tanh",
        )


def test_bad_create_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least an input and an output width"):
        MLP.create([3], "tanh", gaussian_init, rng=rng)
    with pytest.raises(ValueError, match="each layer width must be an integer >= 1"):
        MLP.create([3, 0, 2], "tanh", gaussian_init, rng=rng)
    with pytest.raises(TypeError, match="sizes must be a sequence"):
        MLP.create(3, "tanh", gaussian_init, rng=rng)
    with pytest.raises(TypeError, match="init must be a callable"):
        MLP.create([3, 2], "tanh", "orthogonal", rng=rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        MLP.create([3, 2], "tanh", gaussian_init, rng=0)
    with pytest.raises(ValueError, match=r"init returned shape \(2, 3\).*\(3, 2\)"):
        MLP.create([2, 3], "tanh", lambda shape, *, rng: np.ones(shape[::-1]), rng=rng)
    with pytest.raises(ValueError, match="finite"):
        MLP.create([2, 3], "tanh", lambda shape, *, rng: np.full(shape, np.inf), rng=rng)
    with pytest.raises(ValueError, match="bias_std must be a finite number >= 0"):
        MLP.create([2, 3], "tanh", gaussian_init, rng=rng, bias_std=-1.0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        MLP.create([2, 3], "tanh", gaussian_init, rng=rng, dtype=np.int64)


def test_bad_backward_arguments() -> None:
    net = small_net("tanh")
    fp = net.forward(inputs())
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape.*\(5, 3\)"):
        net.backward(fp, np.ones((5, 2)))
    with pytest.raises(TypeError, match="forward_pass must be the ForwardPass"):
        net.backward(np.ones((5, 4)), np.ones((5, 3)))
    other = MLP.create([2, 3], "tanh", gaussian_init, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not come from a network of this shape"):
        net.backward(other.forward(np.ones((5, 2))), np.ones((5, 3)))
    assert isinstance(fp, ForwardPass)


def test_bad_with_layer_arguments() -> None:
    net = small_net("tanh")
    with pytest.raises(ValueError, match="index must be below the depth 3, got 3"):
        net.with_layer(3, weight=np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"new weight of layer 0 must have shape \(6, 4\)"):
        net.with_layer(0, weight=np.ones((4, 6)))


# --- The chapter's claims at small size ---


def critical_tanh_net(init, n: int, depth: int, seed: int) -> tuple[MLP, np.ndarray]:
    from eiginit.theory.meanfield import critical_sigma_w2, q_star

    sb2 = 5e-6
    sw2 = critical_sigma_w2(sb2)
    rng = np.random.default_rng(seed)
    net = MLP.create(
        [n] * (depth + 1),
        "tanh",
        lambda shape, *, rng: np.sqrt(sw2) * init(shape, rng=rng),
        rng=rng,
        bias_std=np.sqrt(sb2),
        output_activation="tanh",
    )
    x = np.sqrt(q_star(sw2, sb2)) * rng.standard_normal((1, n))
    return net, x


def test_critical_tanh_orthogonal_is_nearly_isometric_gaussian_is_not() -> None:
    # Pennington et al. (2017) at small size: width 100, depth 30. Orthogonal weights keep
    # 80 % of the singular values within a factor 1.5 of one; Gaussian ones put the median
    # orders of magnitude below one.
    net, x = critical_tanh_net(orthogonal_init, 100, 30, seed=0)
    s = net.jacobian_singular_values(x)[0]
    assert 0.9 < np.median(s) < 1.05
    assert np.quantile(s, 0.1) > 1 / 1.5
    assert np.quantile(s, 0.9) < 1.5
    net, x = critical_tanh_net(gaussian_init, 100, 30, seed=0)
    s = net.jacobian_singular_values(x)[0]
    assert np.median(s) < 1e-2


def test_relu_jacobian_rank_is_at_most_the_fewest_active_units() -> None:
    rng = np.random.default_rng(5)
    n = 60
    net = MLP.create(
        [n] * 11,
        "relu",
        lambda s, *, rng: np.sqrt(2) * orthogonal_init(s, rng=rng),
        rng=rng,
        output_activation="relu",
    )
    x = rng.standard_normal((1, n))
    s = net.jacobian_singular_values(x)[0]
    fewest_active = min(int(np.sum(h > 0)) for h in net.forward(x).preactivations)
    assert int(np.sum(s > 1e-13 * s[0])) <= fewest_active < n


@pytest.mark.parametrize(("gain2", "grows"), [(0.5, False), (25 / 9, True)])
def test_backpropagated_signal_vanishes_or_explodes(gain2: float, grows: bool) -> None:
    # Ordered (sigma_w^2 = 0.5) and chaotic (PyTorch's tanh gain 5/3 squared) tanh networks.
    rng = np.random.default_rng(6)
    n, depth = 100, 30
    net = MLP.create(
        [n] * (depth + 1),
        "tanh",
        lambda s, *, rng: np.sqrt(gain2) * gaussian_init(s, rng=rng),
        rng=rng,
        output_activation="tanh",
    )
    x = 0.1 * rng.standard_normal((8, n))
    deltas = net.backward(net.forward(x), rng.standard_normal((8, n))).preactivations
    ratio = np.linalg.norm(deltas[0]) / np.linalg.norm(deltas[-1])
    assert (ratio > 10) if grows else (ratio < 1e-3)


def test_deep_linear_orthogonal_learns_faster_than_gaussian() -> None:
    # Saxe et al. (2014) at small size: width 8, depth 8, gradient descent at rate 0.2 / L.
    rng = np.random.default_rng(2014)
    width, samples = 8, 16
    q, _ = np.linalg.qr(rng.standard_normal((samples, width)))
    X = np.sqrt(samples) * q
    A = orthogonal_init((width, width), rng=rng) * np.linspace(0.2, 1.0, width)
    Y = X @ A.T

    def steps(init) -> int:
        net = MLP.create([width] * 9, "linear", init, rng=rng)
        start = 0.5 * np.sum((net(X) - Y) ** 2) / samples
        for step in range(400):
            fp = net.forward(X)
            residual = fp.output - Y
            loss = 0.5 * np.sum(residual**2) / samples
            if loss < 0.01 * start:
                return step
            grads = net.backward(fp, residual / samples)
            for W, dW in zip(net.weights, grads.weights, strict=True):
                W -= 0.2 / 8 * dW
        return 400

    assert steps(orthogonal_init) < 400
    assert steps(gaussian_init) > steps(orthogonal_init)


# --- Defects found by the bad-input review (each failed before its fix) ---


def two_layer(W0: np.ndarray | None = None, b0: np.ndarray | None = None) -> MLP:
    W0 = np.eye(2) if W0 is None else W0
    b0 = np.zeros(W0.shape[0]) if b0 is None else b0
    return MLP((W0, np.ones((1, W0.shape[0]))), (b0, np.zeros(1)), "tanh")


@pytest.mark.parametrize(
    ("W0", "b0", "match"),
    [
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), None, r"weights\[0\] must be finite"),
        (np.array([[np.inf, 0.0], [0.0, 1.0]]), None, r"weights\[0\] must be finite"),
        (np.eye(2), np.array([np.nan, 0.0]), r"biases\[0\] must be finite"),
        (np.ones((0, 2)), None, "zero-width"),
    ],
)
def test_constructor_refuses_non_finite_and_empty_layers(W0, b0, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        two_layer(W0, b0)


def test_constructor_refuses_the_dtypes_create_refuses() -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        MLP((np.eye(2, dtype=np.float16),), (np.zeros(2, dtype=np.float16),), "tanh")


def test_with_layer_refuses_nan_and_complex() -> None:
    net = two_layer()
    with pytest.raises(ValueError, match="weight must be finite"):
        net.with_layer(0, weight=np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="complex"):
        net.with_layer(0, weight=np.eye(2) * (1 + 1j))
    with pytest.raises(TypeError, match="weight must be an array of real numbers"):
        net.with_layer(0, weight="ab")


def test_copies_share_no_array_with_the_original() -> None:
    net = two_layer()
    for copy in (
        net.with_layer(0, weight=2 * np.eye(2)),
        net.with_parameters(net.weights, net.biases),
    ):
        for new in (*copy.weights, *copy.biases):
            assert not any(np.shares_memory(new, old) for old in (*net.weights, *net.biases))
    copy = net.with_layer(0, bias=np.ones(2))
    copy.weights[1][...] = 0.0  # an in-place update of the copy, as an optimizer step
    assert np.all(net.weights[1] == 1.0)


def test_backward_refuses_a_forward_pass_of_another_shape() -> None:
    net = two_layer()
    other = MLP((np.ones((5, 2)), np.ones((1, 5))), (np.zeros(5), np.zeros(1)), "tanh")
    with pytest.raises(ValueError, match="does not come from a network of this shape"):
        net.backward(other.forward(np.ones((3, 2))), np.ones((3, 1)))


def test_backward_lets_an_overflowed_gradient_through() -> None:
    # training.first_step measures overflowed float32 networks: NaN in, NaN out, no error.
    net = two_layer()
    g = net.backward(net.forward(np.ones((3, 2))), np.full((3, 1), np.nan))
    assert np.all(np.isnan(g.inputs))
    with pytest.raises(TypeError, match="grad_output must hold real numbers"):
        net.backward(net.forward(np.ones((3, 2))), [["a"], ["b"], ["c"]])


@pytest.mark.parametrize(("index", "error"), [(99, ValueError), (-1, ValueError), ("a", TypeError)])
def test_layer_activation_checks_its_index(index: object, error: type) -> None:
    with pytest.raises(error, match="index"):
        two_layer().layer_activation(index)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("h", "error"),
    [
        (None, TypeError),
        ("abc", TypeError),
        ({}, TypeError),
        ([[], [0]], TypeError),
        (np.array([1.0, 2.0], dtype=object), TypeError),
        (np.datetime64("NaT"), TypeError),
        ([1 + 1j, 0.0], TypeError),
        ([np.nan], ValueError),
    ],
)
def test_activations_validate_h(h: object, error: type) -> None:
    for fn in (apply_activation, activation_derivative):
        with pytest.raises(error, match="h "):
            fn("tanh", h)


def test_activations_keep_float32() -> None:
    h = np.ones(3, dtype=np.float32)
    assert apply_activation("selu", h).dtype == np.float32
    assert activation_derivative("tanh", h).dtype == np.float32


def test_negative_slope_nan_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="negative_slope must be a finite number"):
        apply_activation("leaky_relu", [1.0], negative_slope=float("nan"))


def test_create_explains_an_init_without_rng_and_a_bad_dtype() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="keyword argument rng"):
        MLP.create([2, 2], "tanh", lambda shape: np.ones(shape), rng=rng)
    with pytest.raises(TypeError, match="dtype must be a numpy float dtype"):
        MLP.create([2, 2], "tanh", lambda shape, *, rng: np.ones(shape), rng=rng, dtype="garbage")
