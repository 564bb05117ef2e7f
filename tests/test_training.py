import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import initializers as ini
from eiginit.datasets import Dataset
from eiginit.network import MLP
from eiginit.training import (
    SGD,
    Adam,
    TrainingResult,
    accuracy,
    first_step,
    lsuv,
    make_optimizer,
    softmax_cross_entropy,
    train,
)


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
def test_sgd_momentum_follows_the_formula():
    theta = np.array([2.0])
    opt = SGD(lr=0.5, momentum=0.9)
    v = 0.0
    expected = 2.0
    for g in (1.0, -2.0, 0.5):
        opt.step([theta], [np.array([g])])
        v = 0.9 * v + g
        expected -= 0.5 * v
    assert theta[0] == pytest.approx(expected)


def test_adam_follows_the_formula():
    theta = np.array([1.0])
    opt = Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    m = v = 0.0
    expected = 1.0
    for t, g in enumerate((0.3, -1.0, 2.0), start=1):
        opt.step([theta], [np.array([g])])
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        expected -= 0.1 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-3)
    assert theta[0] == pytest.approx(expected, rel=1e-12)


def test_adam_first_step_has_size_lr_whatever_the_gradient_scale():
    for scale in (1e-6, 1.0, 1e6):
        theta = np.zeros(1)
        Adam(lr=0.01).step([theta], [np.array([scale])])
        assert theta[0] == pytest.approx(-0.01, rel=1e-2)


@pytest.mark.parametrize("lr", [0, -1e-3, float("nan")])
def test_optimizers_reject_non_positive_learning_rates(lr):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        make_optimizer("adam", lr)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        SGD(lr)


def test_make_optimizer_rejects_unknown_names_and_bad_options():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; expected one of sgd, adam"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(TypeError, match="optimizer must be a string"):
        make_optimizer(None, 0.1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        make_optimizer("sgd", 0.1, momentum=1.0)
    with pytest.raises(TypeError, match="betas must be a pair"):
        make_optimizer("adam", 0.1, betas=0.9)
    assert isinstance(make_optimizer("SGD", 0.1), SGD)


def test_step_rejects_mismatched_lists():
    with pytest.raises(ValueError, match="2 parameter arrays but 1 gradients"):
        SGD(0.1).step([np.zeros(1), np.zeros(1)], [np.zeros(1)])


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam(0.1)])
def test_step_checks_shapes_dtypes_and_writability(make):
    with pytest.raises(ValueError, match=r"grads\[0\] must have the shape of params\[0\], \(3,\)"):
        make().step([np.zeros(3)], [np.ones(1)])  # used to broadcast silently
    with pytest.raises(ValueError, match=r"shape of params\[0\]"):
        make().step([np.zeros(3)], [np.ones((3, 1))])
    with pytest.raises(TypeError, match=r"params\[0\] must be a float numpy array"):
        make().step([np.zeros(3, dtype=int)], [np.ones(3)])
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        make().step([read_only], [np.ones(3)])
    with pytest.raises(TypeError, match="params must be a list"):
        make().step((p for p in [np.zeros(3)]), [np.ones(3)])
    for bad in (np.array([]), "a", np.array(["a", "b", "c"]), np.zeros(3, dtype="datetime64[s]")):
        with pytest.raises((TypeError, ValueError), match=r"grads\[0\]"):
            make().step([np.zeros(3)], [bad])


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam(0.1)])
def test_step_state_is_bound_to_the_first_parameter_list(make):
    opt = make()
    opt.step([np.zeros(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="state belongs to a list of 1 arrays"):
        opt.step([np.zeros(4)], [np.ones(4)])
    with pytest.raises(ValueError, match="fresh optimizer"):
        opt.step([np.zeros(3, dtype=np.float32)], [np.ones(3, dtype=np.float32)])
    with pytest.raises(ValueError, match="fresh optimizer"):
        opt.step([np.zeros(3), np.zeros(3)], [np.ones(3), np.ones(3)])


def test_epochs_to_checks_its_target():
    r = TrainingResult(np.zeros(3), np.array([0.1, 0.5, 0.9]), np.zeros((2, 1)), np.zeros(1),
                       False, None, "adam")  # fmt: skip
    assert r.epochs_to(0.5) == 1
    with pytest.raises(TypeError, match="target must be an accuracy"):
        r.epochs_to("a")
    with pytest.raises(ValueError, match=r"target must be an accuracy in \[0, 1\], got 90"):
        r.epochs_to(90)


def test_loss_and_accuracy_refuse_ragged_input_clearly():
    with pytest.raises(TypeError, match="logits must be a rectangular array"):
        softmax_cross_entropy([[], [0.0]], [0, 0])
    with pytest.raises(TypeError, match="labels must be a flat array of integers"):
        accuracy([[1.0, 0.0], [0.0, 1.0]], [[], [0]])


# -------------------------------------------------------------------------------- training
@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 0.05), ("adam", 0.01)])
def test_training_reduces_the_loss_on_a_tiny_problem(optimizer, lr):
    data = blobs()
    net = make_net([4, 16, 16, 3])
    result = train(
        net,
        data,
        rng=np.random.default_rng(1),
        optimizer=optimizer,
        lr=lr,
        epochs=8,
        batch_size=10,
        progress=False,
    )
    assert not result.diverged
    assert result.train_loss[-1] < 0.5 * result.train_loss[0]
    assert result.final_accuracy > 0.85
    assert result.train_loss.shape == (9,)
    assert result.test_accuracy.shape == (9,)
    assert result.grad_norms.shape == (8, 3)
    assert result.first_grad_norms.shape == (3,)
    assert result.epochs == 8
    assert result.epochs_to(0.9) is not None


def test_training_does_not_touch_the_input_network_and_is_reproducible():
    data = blobs()
    net = make_net([4, 8, 3])
    before = [W.copy() for W in net.weights]
    a = train(net, data, rng=np.random.default_rng(3), epochs=2, progress=False)
    b = train(net, data, rng=np.random.default_rng(3), epochs=2, progress=False)
    assert all(np.array_equal(W, W0) for W, W0 in zip(net.weights, before, strict=True))
    assert np.array_equal(a.train_loss, b.train_loss)
    assert not np.array_equal(a.network.weights[0], net.weights[0])


def test_first_grad_norms_match_a_direct_backward_pass():
    data = blobs()
    net = make_net([4, 8, 8, 3])
    rng = np.random.default_rng(4)
    result = train(net, data, rng=rng, epochs=1, batch_size=16, progress=False)
    first_batch = np.random.default_rng(4).permutation(len(data.y_train))[:16]
    expected = first_step(net, data.x_train[first_batch], data.y_train[first_batch])
    assert np.allclose(result.first_grad_norms, expected.grad_norms)


def test_training_float32_stays_float32():
    data = blobs(dtype=np.float32)
    net = make_net([4, 8, 3], dtype=np.float32)
    result = train(net, data, rng=np.random.default_rng(0), epochs=1, progress=False)
    assert result.network.dtype == np.float32


def test_overflowing_network_is_reported_as_diverged_without_warnings():
    data = blobs(dtype=np.float32)
    big = lambda s, *, rng: ini.normal(s, 0.0, 30.0, rng=rng)  # noqa: E731
    net = make_net([4] + [64] * 30 + [3], init=big, dtype=np.float32)
    result = train(net, data, rng=np.random.default_rng(0), epochs=3, progress=False)
    assert result.diverged
    assert np.isnan(result.final_accuracy)
    assert np.all(np.isnan(result.train_loss[1:]))


def test_too_large_learning_rate_diverges():
    data = blobs(dtype=np.float32)
    net = make_net([4, 32, 32, 3], dtype=np.float32)
    result = train(
        net, data, rng=np.random.default_rng(0), optimizer="sgd", lr=1e6, epochs=5, progress=False
    )
    assert result.diverged


def test_train_reports_progress_when_asked(capsys):
    train(make_net([4, 8, 3]), blobs(), rng=np.random.default_rng(0), epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err
    assert "epoch 2/2" in err
    assert "test accuracy" in err


def test_train_is_quiet_when_not_interactive(capsys):
    train(make_net([4, 8, 3]), blobs(), rng=np.random.default_rng(0), epochs=1)
    assert capsys.readouterr().err == ""


def test_train_rejects_bad_arguments():
    data, net = blobs(), make_net([4, 8, 3])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        train(net, data, rng=rng, optimizer="adagrad")
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got 0"):
        train(net, data, rng=rng, lr=0.0)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got -0\.1"):
        train(net, data, rng=rng, lr=-0.1)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        train(net, data, rng=rng, epochs=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        train(net, data, rng=rng, batch_size=0)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        train(net, data, rng=1)
    with pytest.raises(TypeError, match=r"net must be an eiginit\.MLP"):
        train("net", data, rng=rng)
    with pytest.raises(TypeError, match=r"data must be an eiginit\.Dataset"):
        train(net, (data.x_train, data.y_train), rng=rng)
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        train(net, data, rng=rng, progress="yes")


def test_train_rejects_mismatched_labels():
    data, net = blobs(), make_net([4, 8, 3])
    rng = np.random.default_rng(0)
    too_many = Dataset(data.x_train, data.y_train + 5, data.x_test, data.y_test, 8, "wide")
    with pytest.raises(ValueError, match="the network has only 3 outputs"):
        train(net, too_many, rng=rng)
    wrong_width = Dataset(
        data.x_train[:, :3], data.y_train, data.x_test[:, :3], data.y_test, 3, "w"
    )
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        train(net, wrong_width, rng=rng)


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


def test_train_refuses_complex_and_nan_data_naming_the_split():
    data, net = blobs(), make_net([4, 8, 3])
    rng = np.random.default_rng(0)
    # Dataset refuses them at construction; a Dataset whose arrays were changed afterwards
    # (object.__setattr__ on the frozen dataclass) is refused by train itself.
    for bad, error, message in (
        (data.x_train.astype(complex), TypeError, r"data\.x_train must hold real.*complex"),
        (np.full_like(data.x_train, np.nan), ValueError, r"data\.x_train must be finite"),
    ):
        tampered = Dataset(data.x_train, data.y_train, data.x_test, data.y_test, 3, "t")
        object.__setattr__(tampered, "x_train", bad)
        with pytest.raises(error, match=message):
            train(net, tampered, rng=rng)


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


def test_progress_defaults_to_quiet_in_a_notebook_kernel_and_loud_at_a_prompt(monkeypatch, capsys):
    import sys

    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    train(make_net([4, 8, 3]), blobs(), rng=np.random.default_rng(0), epochs=1)
    assert "epoch 1/1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    train(make_net([4, 8, 3]), blobs(), rng=np.random.default_rng(0), epochs=1)
    assert capsys.readouterr().err == ""


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
