import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import initializers as ini
from eiginit.datasets import Dataset
from eiginit.models.losses import accuracy, softmax_cross_entropy
from eiginit.models.network import MLP
from eiginit.training.engine import MLPModel, fit
from eiginit.training.first_steps import first_step, lsuv


def blobs(n=120, classes=3, features=4, seed=0, dtype=np.float64):
    """A tiny, well-separated classification problem."""
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((classes, features))
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.standard_normal((n, features))).astype(dtype)
    half = n // 2
    return Dataset(x[:half], y[:half], x[half:], y[half:], classes, "blobs")


def make_net(sizes, activation="relu", init=None, seed=0, dtype=np.float64):
    init = init or (lambda s, *, rng: ini.kaiming_normal(s, nonlinearity="relu", rng=rng))
    return MLP.create(sizes, activation, init, rng=np.random.default_rng(seed), dtype=dtype)


# ------------------------------------------------------------------------------------ loss
def naive_cross_entropy(z, y):
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(y)), y]))


def test_cross_entropy_of_uniform_logits_is_log_classes():
    loss, grad = softmax_cross_entropy(np.full((5, 10), 3.0), [0, 1, 2, 3, 9])
    assert loss == pytest.approx(np.log(10), rel=1e-12)
    assert np.allclose(grad.sum(axis=1), 0)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_cross_entropy_matches_naive_formula_and_finite_differences(seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((4, 5))
    y = rng.integers(0, 5, 4)
    loss, grad = softmax_cross_entropy(z, y)
    assert loss == pytest.approx(naive_cross_entropy(z, y), rel=1e-10)
    eps = 1e-6
    numeric = np.zeros_like(z)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            dz = np.zeros_like(z)
            dz[i, j] = eps
            numeric[i, j] = (
                softmax_cross_entropy(z + dz, y)[0] - softmax_cross_entropy(z - dz, y)[0]
            ) / (2 * eps)
    assert np.allclose(grad, numeric, atol=1e-8)


def test_cross_entropy_is_stable_for_huge_logits():
    with np.errstate(over="raise", invalid="raise"):  # the log-sum-exp must not overflow
        loss, grad = softmax_cross_entropy([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], [1, 1])
    assert loss == pytest.approx(5e3)
    assert np.all(np.isfinite(grad))


def test_cross_entropy_keeps_float32():
    _, grad = softmax_cross_entropy(np.zeros((2, 3), dtype=np.float32), [0, 1])
    assert grad.dtype == np.float32


def test_cross_entropy_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="one entry per row"):
        softmax_cross_entropy(np.zeros((3, 4)), [0, 1])
    with pytest.raises(ValueError, match="below n_classes = 4"):
        softmax_cross_entropy(np.zeros((2, 4)), [0, 4])
    with pytest.raises(TypeError, match="integers"):
        softmax_cross_entropy(np.zeros((2, 4)), [0.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        softmax_cross_entropy(np.zeros(4), [0])
    with pytest.raises(TypeError, match="real numbers"):
        softmax_cross_entropy("logits", [0])


def test_accuracy_counts_nan_rows_as_wrong():
    assert accuracy([[2.0, 1.0], [np.nan, 1.0]], [0, 1]) == 0.5


# ------------------------------------------------------------------------------ optimizers
def test_loss_and_accuracy_refuse_ragged_input_clearly():
    with pytest.raises(TypeError, match="logits must be a rectangular array"):
        softmax_cross_entropy([[], [0.0]], [0, 0])
    with pytest.raises(TypeError, match="labels must be a flat array of integers"):
        accuracy([[1.0, 0.0], [0.0, 1.0]], [[], [0]])


# -------------------------------------------------------------------------------- training
# Training is eiginit.fit (tests/test_engine.py, tests/test_batched.py); here, the book's MLP on
# the problems the old single-network loop was tested on.
def fit_one(net, data, *, seed=1, **kw):
    model, params = MLPModel.from_networks([net], dtype=net.dtype)
    return model, fit(model, params, data, seeds=[seed], **kw)


@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 0.05), ("adam", 0.01)])
def test_training_reduces_the_loss_on_a_tiny_problem(optimizer, lr):
    data = blobs()
    model, result = fit_one(make_net([4, 16, 16, 3]), data, optimizer=optimizer, lr=lr, epochs=8,
                            batch_size=10)  # fmt: skip
    assert not result.diverged[0]
    assert result.train_loss[0, -1] < 0.5 * result.train_loss[0, 0]
    net = model.network(result.params, 0)
    assert accuracy(net(data.x_test), data.y_test) > 0.85
    assert result.train_loss.shape == (1, 9)


def test_first_step_matches_the_engines_first_gradient():
    data = blobs()
    net = make_net([4, 8, 8, 3])
    model, params = MLPModel.from_networks([net], dtype=np.float64)
    batch = np.random.default_rng(4).permutation(len(data.y_train))[:16]
    _, grads = model.loss_and_gradients(
        params, data.x_train[batch][None], data.y_train[batch][None]
    )
    norms = [np.linalg.norm(g[0]) for g in grads[: net.depth]]
    expected = first_step(net, data.x_train[batch], data.y_train[batch])
    np.testing.assert_allclose(norms, expected.grad_norms, rtol=1e-10)


def test_overflowing_network_is_reported_as_diverged_without_warnings():
    data = blobs(dtype=np.float32)
    big = lambda s, *, rng: ini.normal(s, 0.0, 30.0, rng=rng)  # noqa: E731
    net = make_net([4] + [64] * 30 + [3], init=big, dtype=np.float32)
    with np.errstate(all="raise"):
        _, result = fit_one(net, data, lr=1e-3, epochs=3)
    assert result.diverged[0]
    assert np.all(np.isnan(result.train_loss[0, 1:]))


def test_too_large_learning_rate_diverges():
    data = blobs(dtype=np.float32)
    net = make_net([4, 32, 32, 3], dtype=np.float32)
    _, result = fit_one(net, data, optimizer="sgd", lr=1e6, epochs=5)
    assert result.diverged[0]


def test_fit_refuses_labels_beyond_the_networks_outputs():
    data, net = blobs(), make_net([4, 8, 3])
    too_many = Dataset(data.x_train, data.y_train + 5, data.x_test, data.y_test, 8, "wide")
    with pytest.raises(ValueError, match="labels below the model's 3 outputs"):
        fit_one(net, too_many, lr=1e-3)


def test_dataset_validates_at_construction():
    data = blobs()
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    with pytest.raises(ValueError, match=r"one label per row of x_train"):
        Dataset(x, y[:-1], xt, yt, 3, "short")
    with pytest.raises(TypeError, match="must hold integers"):
        Dataset(x, y.astype(float), xt, yt, 3, "f")
    with pytest.raises(TypeError, match="x_train must be a 2-D array"):
        Dataset(None, None, None, None, 10, "none")
    with pytest.raises(TypeError, match="n_classes must be an integer"):
        Dataset(x, y, xt, yt, "ten", "name")
    with pytest.raises(ValueError, match="label 2, but n_classes = 2"):
        Dataset(x, y, xt, yt, 2, "too few classes")
    with pytest.raises(ValueError, match="x_test has 3 features"):
        Dataset(x, y, xt[:, :3], yt, 3, "narrow test")
    with pytest.raises(ValueError, match="given together"):
        Dataset(x, y, xt, yt, 3, "half a validation set", x_val=xt)
    with pytest.raises(TypeError, match="complex input"):
        Dataset(x.astype(complex), y, xt, yt, 3, "complex")
    with pytest.raises(ValueError, match="x_test must be finite"):
        Dataset(x, y, np.where(xt > 1, np.nan, xt), yt, 3, "nan")


# ------------------------------------------------------------------------------ first step
def test_first_step_loss_at_zero_output_layer_is_log_classes():
    net = make_net([4, 8, 10]).with_layer(1, weight=np.zeros((10, 8)))
    fs = first_step(net, np.ones((5, 4)), [0, 1, 2, 3, 4])
    assert fs.loss == pytest.approx(np.log(10))
    assert fs.activation_rms.shape == (2,)
    assert fs.grad_norms.shape == (2,)


def test_relu_lecun_activations_shrink_by_sqrt2_per_layer():
    # Chapter claim: with Var(W) = 1/fan_in a ReLU layer halves the mean square activation, so
    # log(rms) falls by log(2)/2 = 0.347 per layer. The log squared norm after L layers of width
    # n fluctuates with sd about sqrt(5 L / n) (Hanin & Rolnick 2018), so the per-layer slope of
    # log(rms) has sd about sqrt(5 / (n L)) / 2 = 0.03 here; we allow 3.5 sd.
    depth, width = 16, 128
    net = make_net([width] * (depth + 1), init=ini.lecun_normal, seed=11)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((256, width))
    fs = first_step(net, x, rng.integers(0, width, 256))
    slope = (np.log(fs.activation_rms[-2]) - np.log(np.sqrt(np.mean(x**2)))) / (depth - 1)
    assert slope == pytest.approx(-np.log(2) / 2, abs=0.1)


def test_first_step_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="one entry per row of x"):
        first_step(make_net([4, 8, 3]), np.ones((5, 4)), [0, 1])
    with pytest.raises(TypeError, match=r"net must be an eiginit\.MLP"):
        first_step(None, np.ones((5, 4)), [0] * 5)


# ------------------------------------------------------------------------------------ LSUV
@given(
    st.sampled_from(["relu", "tanh", "linear"]),
    st.integers(1, 6),
    st.floats(0.01, 20.0),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=30, deadline=None)
def test_lsuv_brings_every_layer_within_tolerance(activation, depth, scale, seed):
    rng = np.random.default_rng(seed)
    init = lambda s, *, rng: scale * ini.orthogonal(s, rng=rng)  # noqa: E731
    net = MLP.create([6] + [16] * depth + [4], activation, init, rng=rng, bias_std=0.3)
    x = rng.standard_normal((64, 6))
    result = lsuv(net, x, tol=0.05, max_iter=20)
    assert result.converged
    fp = result.network.forward(x)
    variances = np.array([h.var() for h in fp.preactivations])
    assert np.all(np.abs(variances - 1) < 0.05)
    assert np.allclose(variances, result.variances)
    assert np.all(result.iterations <= 20)


def test_lsuv_without_biases_needs_one_rescaling_per_layer():
    net = make_net([8, 32, 32, 32, 5], init=lambda s, *, rng: 7 * ini.orthogonal(s, rng=rng))
    result = lsuv(net, np.random.default_rng(0).standard_normal((128, 8)), tol=1e-6)
    assert result.converged
    assert result.iterations.tolist() == [1, 1, 1, 1]


def test_lsuv_respects_the_iteration_cap_and_reports_failure():
    # With biases the variance is not linear in the weight scale, so one rescaling cannot meet
    # a tight tolerance: LSUV stops at max_iter and says it did not converge.
    net = MLP.create(
        [8, 32, 5],
        "relu",
        lambda s, *, rng: 7 * ini.orthogonal(s, rng=rng),
        rng=np.random.default_rng(0),
        bias_std=0.5,
    )
    result = lsuv(net, np.random.default_rng(0).standard_normal((128, 8)), tol=1e-6, max_iter=1)
    assert not result.converged
    assert result.iterations.tolist() == [1, 1]


def test_lsuv_leaves_the_input_network_alone():
    net = make_net([8, 16, 5])
    before = net.weights[0].copy()
    lsuv(net, np.random.default_rng(0).standard_normal((32, 8)))
    assert np.array_equal(net.weights[0], before)


def test_lsuv_rejects_bad_input():
    net = make_net([8, 16, 5])
    x = np.random.default_rng(0).standard_normal((32, 8))
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        lsuv(net, x, tol=0)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        lsuv(net, x, max_iter=0)
    with pytest.raises(ValueError, match="at least 2 examples"):
        lsuv(net, x[:1])
    with pytest.raises(ValueError, match="positive variance"):
        lsuv(net, np.zeros((32, 8)))
    with pytest.raises(ValueError, match=r"shape \(batch, 8\)"):
        lsuv(net, x[:, :3])
    with pytest.raises(TypeError, match=r"net must be an eiginit\.MLP"):
        lsuv("net", x)


# ------------------------------------------------------- claims of chapter "Does it train?"
def _rms_slope(init, activation="relu", depth=16, width=128, seed=11):
    """Per-layer change of log(activation RMS) through the hidden layers, at initialization."""
    net = make_net([width] * (depth + 1), activation, init=init, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((256, width))
    fs = first_step(net, x, rng.integers(0, width, 256))
    return (np.log(fs.activation_rms[-2]) - np.log(np.sqrt(np.mean(x**2)))) / (depth - 1)


def test_pytorch_default_shrinks_relu_activations_by_sqrt6_per_layer():
    # Var W = 1/(3 fan_in) and ReLU halves the mean square: factor 1/6 in the mean square,
    # log(rms) slope -log(6)/2 = -0.896; same tolerance as the LeCun test above.
    assert _rms_slope(ini.torch_linear_default) == pytest.approx(-np.log(6) / 2, abs=0.1)


def test_kaiming_keeps_relu_activations_level():
    kaiming = lambda s, *, rng: ini.kaiming_normal(s, nonlinearity="relu", rng=rng)  # noqa: E731
    assert _rms_slope(kaiming) == pytest.approx(0.0, abs=0.1)


def test_tanh_with_gain_five_thirds_grows_gradients_towards_the_input():
    # Chapter claim: in the chaotic phase the backward signal grows by sqrt(chi_1) per layer,
    # chi_1 = 1.21 for sigma_w = 5/3, sigma_b = 0 (mean-field theory, Poole et al. 2016).
    # Finite width and the first layers' transient (q has to reach q*) blur it: we ask for the
    # measured per-layer growth of the gradient norm to be within 0.05 of 0.5 log(chi_1) = 0.095.
    import eiginit

    chi = float(eiginit.mean_field((5 / 3) ** 2, 0.0, activation="tanh").chi_1)
    depth, width = 24, 128
    init = lambda s, *, rng: ini.kaiming_normal(s, nonlinearity="tanh", rng=rng)  # noqa: E731
    net = make_net([width] * (depth + 1), "tanh", init=init, seed=3)
    rng = np.random.default_rng(4)
    fs = first_step(net, rng.standard_normal((256, width)), rng.integers(0, width, 256))
    layers = np.arange(4, depth - 1)  # skip the transient and the output layer
    slope = -np.polyfit(layers, np.log(fs.grad_norms[layers]), 1)[0]
    assert slope == pytest.approx(0.5 * np.log(chi), abs=0.05)


def test_seed_recipe_is_lecun_in_disguise_at_width_128():
    # rho(G) of a k x k Gaussian matrix is close to sqrt(k) (circular law), slightly above it at
    # finite k; after division the largest singular value is near 2 (quarter-circle edge).
    rng = np.random.default_rng(5)
    G = rng.standard_normal((40, 128, 128))
    rho = np.abs(np.linalg.eigvals(G)).max(axis=1)
    ratio = rho / np.sqrt(128)
    assert 1.0 < ratio.mean() < 1.1
    sigma = np.linalg.svd(G / rho[:, None, None], compute_uv=False)
    assert 1.8 < sigma[:, 0].mean() < 2.1
    assert 0.8 < np.mean(sigma**2) < 1.0


def test_lsuv_gives_relu_layers_kaiming_gain():
    # Unit pre-activation variance after a ReLU needs Var W * fan_in * 1/2 = 1: gain sqrt(2).
    net = make_net([64] + [128] * 6 + [10], init=ini.orthogonal, seed=2)
    x = np.random.default_rng(3).standard_normal((512, 64))
    lsuv_net = lsuv(net, x).network
    gains = [W.std() * np.sqrt(W.shape[1]) for W in lsuv_net.weights[1:-1]]
    assert np.allclose(gains, np.sqrt(2), atol=0.2)


def test_initial_loss_on_digits_is_log10_when_balanced_and_huge_for_standard_normal():
    from eiginit.datasets import load_digits

    data = load_digits(rng=np.random.default_rng(0))
    x, y = data.x_train[:256], data.y_train[:256]
    unit = lambda s, *, rng: ini.normal(s, 0.0, 1.0, rng=rng)  # noqa: E731
    kaiming = lambda s, *, rng: ini.kaiming_normal(s, nonlinearity="relu", rng=rng)  # noqa: E731
    sizes = [64] + [128] * 7 + [10]
    big = first_step(make_net(sizes, init=unit, dtype=np.float32), x, y).loss
    good = first_step(make_net(sizes, init=kaiming, dtype=np.float32), x, y).loss
    assert big > 1e3
    assert 2.0 < good < 4.0
