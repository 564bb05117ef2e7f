"""Regression tests for the Part V bad-input report, recurrent/curvature/datasets/batched/notebook.

Each test names the defect of the review "eiginit, Part V modules: bad and extreme input"
(shared/reviews/2026-12-part-5-bad-input.md) it guards: H1, H2, H4, H5, H7, M8, M9, L1, L2, L3,
L6, L7, L8, L9. Every one of them failed on the package at the report's commit, except the
three whose names say ``still``: they pin what the fix must keep (the default tolerance, a
moderate shift, divergence reported as such). The tests named ``scale_*`` check the standard
beyond the report's cases: finite input of any magnitude gives the right answer, or a
ValueError naming the argument. ``found_*`` is a defect the property tests found (it failed
before too).
"""

from __future__ import annotations

import numpy as np
import pytest

import eiginit as E
from eiginit.datasets import Dataset

rng = np.random.default_rng


def _init(shape: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape) / np.sqrt(shape[1])


@pytest.fixture(scope="module")
def tiny_problem() -> tuple[E.MLP, np.ndarray, np.ndarray]:
    """The report's network: sizes [3, 4, 2], tanh, 26 parameters, a batch of 6."""
    r0 = rng(0)
    net = E.MLP.create([3, 4, 2], "tanh", _init, rng=r0, bias_std=0.1)
    x, y = r0.standard_normal((6, 3)), r0.integers(0, 2, 6)
    return net, x, y


def _dense_hessian(net: E.MLP, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = E.flatten_parameters(net).size
    H = np.column_stack([E.hessian_vector_product(net, x, y, e) for e in np.eye(n)])
    return (H + H.T) / 2


# --------------------------------------------------------------------------- curvature


@pytest.mark.parametrize("tol", [10.0, 1.0])
def test_H1_hessian_top_eigenvalue_refuses_tol_of_one_or_more(tiny_problem, tol) -> None:
    net, x, y = tiny_problem
    with pytest.raises(ValueError, match="tol must be < 1"):
        E.hessian_top_eigenvalue(net, x, y, rng=rng(1), tol=tol)


def test_H1_default_tol_still_matches_the_dense_hessian(tiny_problem) -> None:
    net, x, y = tiny_problem
    eig = np.linalg.eigvalsh(_dense_hessian(net, x, y))
    top = eig[np.argmax(np.abs(eig))]
    r = E.hessian_top_eigenvalue(net, x, y, rng=rng(1))
    assert r.converged
    assert abs(r.eigenvalue - top) <= 1e-6


def test_found_converged_means_the_dominant_eigenvalue_even_from_the_second_eigenvector(
    tiny_problem,
) -> None:
    # Found by tests/test_properties_part5_a.py, not in the report: a residual test certifies an
    # eigenpair, any eigenpair. Started on the second eigenvector, the iteration used to stop
    # there after one product, converged=True with the wrong eigenvalue.
    net, x, y = tiny_problem
    eig, vectors = np.linalg.eigh(_dense_hessian(net, x, y))
    order = np.argsort(-np.abs(eig))
    r = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), v0=vectors[:, order[1]])
    assert r.converged
    assert abs(r.eigenvalue - eig[order[0]]) <= r.residual + 1e-12
    assert r.check_products > 0
    short = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), v0=vectors[:, order[1]], max_iter=1)
    assert not short.converged
    assert "found an eigenvalue of larger modulus" in short.reason


@pytest.mark.parametrize("shift", [1e20, -1e20, 1e13, 1e200])
def test_H2_hessian_top_eigenvalue_refuses_a_shift_that_swamps_the_hessian(
    tiny_problem, shift
) -> None:
    # Before: shift=1e20 gave eigenvalue 0, residual 0, converged=True; 1e200 blamed the start
    # vector ("lies in its null space").
    net, x, y = tiny_problem
    with pytest.raises(ValueError, match="shift"):
        E.hessian_top_eigenvalue(net, x, y, rng=rng(1), shift=shift)


def test_H2_a_moderate_shift_still_finds_the_largest_positive_eigenvalue(tiny_problem) -> None:
    net, x, y = tiny_problem
    eig = np.linalg.eigvalsh(_dense_hessian(net, x, y))
    s = 2 * abs(eig[0])
    r = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), shift=s, tol=1e-8, max_iter=20_000)
    assert r.converged
    assert abs(r.eigenvalue - eig[-1]) <= 1e-8


def test_L8_numpy_scalars_are_accepted_like_python_ones(tiny_problem, monkeypatch) -> None:
    # glue's printing path: myst-nb's glue outside a kernel starts an IPython shell, which sets
    # sys.ps1 for the rest of the session (and makes `train` think a person is watching).
    monkeypatch.setattr("eiginit.notebook._myst_nb_glue", None)
    net, x, y = tiny_problem
    v = rng(2).standard_normal(26)
    np.testing.assert_array_equal(
        E.hessian_vector_product(net, x, y, v, gauss_newton=np.bool_(True)),
        E.hessian_vector_product(net, x, y, v, gauss_newton=True),
    )
    a = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), shift=np.int64(1))
    b = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), shift=1.0)
    assert a.eigenvalue == b.eigenvalue
    E.glue("h28a_l8", 1.0, display=np.bool_(False))


@pytest.mark.parametrize(
    "call",
    [
        lambda net, x, y: E.unflatten_parameters(net, [[1.0, 2.0], [3.0]]),
        lambda net, x, y: E.hessian_vector_product(net, x, y, [[1.0, 2.0], [3.0]]),
    ],
    ids=["unflatten_parameters", "hessian_vector_product"],
)
def test_L1_curvature_refuses_ragged_vectors_naming_them(tiny_problem, call) -> None:
    net, x, y = tiny_problem
    with pytest.raises(TypeError, match="vector must be a flat array of real numbers"):
        call(net, x, y)


@pytest.mark.parametrize("exponent", [-1060, -900, -40, 0, 40, 900, 1000])
def test_scale_hessian_vector_product_is_exactly_linear(tiny_problem, exponent) -> None:
    net, x, y = tiny_problem
    v = rng(3).standard_normal(26)
    v[0] = 1.5  # the largest entry, so that 2**exponent * v stays finite up to 2**1022
    expected = np.ldexp(E.hessian_vector_product(net, x, y, v), exponent)
    got = E.hessian_vector_product(net, x, y, np.ldexp(v, exponent))
    if exponent >= -900:  # below, the true products are subnormal and lose digits
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-300)


def test_scale_hessian_vector_product_refuses_a_product_beyond_float64(tiny_problem) -> None:
    net, x, y = tiny_problem
    # The largest entry of H 1 is about 9.7 for inputs 10 x: 1.7e308 times it overflows.
    with pytest.raises(ValueError, match="product H v is beyond float64's range"):
        E.hessian_vector_product(net, 10 * x, y, np.full(26, 1.7e308))


def test_scale_float32_network_refuses_a_vector_it_cannot_hold(tiny_problem) -> None:
    _, x, y = tiny_problem
    net32 = E.MLP.create([3, 4, 2], "tanh", _init, rng=rng(0), dtype=np.float32)
    for call in (
        lambda: E.hessian_vector_product(net32, x, y, np.full(26, 1e300)),
        lambda: E.unflatten_parameters(net32, np.full(26, 1e300)),
    ):
        with pytest.raises(ValueError, match="vector has entries beyond"):
            call()


@pytest.mark.parametrize(("lr", "dtype"), [(1e300, np.float32), (3e38, np.float32)])
def test_scale_gradient_descent_reports_weights_that_overflow_as_divergence(
    tiny_problem, lr, dtype
) -> None:
    # Before: the next step refused its own weights ("vector must be finite").
    _, x, y = tiny_problem
    net = E.MLP.create([3, 4, 2], "tanh", _init, rng=rng(0), bias_std=0.1, dtype=dtype)
    run = E.gradient_descent(net, x, y, lr=lr, steps=4, max_loss=1e308)
    assert run.diverged
    assert run.final_loss == np.inf


def test_scale_float32_network_refuses_inputs_it_cannot_hold(tiny_problem) -> None:
    # Before: "the loss of the network on this batch is nan: the forward pass overflowed".
    _, x, y = tiny_problem
    net32 = E.MLP.create([3, 4, 2], "tanh", _init, rng=rng(0), dtype=np.float32)
    with pytest.raises(ValueError, match="x has entries beyond the range"):
        E.loss_and_gradient(net32, x * 1e300, y)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_scale_hessian_top_eigenvalue_start_vector_of_any_size(tiny_problem, scale) -> None:
    # Before: a v0 of 1e-300 had norm 0 ("v0 must be a nonzero vector"), 1e300 an inf norm.
    net, x, y = tiny_problem
    v0 = rng(4).standard_normal(26)
    a = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), v0=v0)
    b = E.hessian_top_eigenvalue(net, x, y, rng=rng(1), v0=v0 * scale)
    assert b.converged
    assert abs(a.eigenvalue - b.eigenvalue) <= 1e-12


# --------------------------------------------------------------------------- recurrent


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-13, 1e13, 1e200, 1e300])
def test_H4_memory_capacity_of_a_delay_line_does_not_depend_on_input_scale(scale) -> None:
    reference = E.memory_capacity(np.eye(4, k=-1), [1.0, 0, 0, 0], rng=rng(0), max_delay=6)
    got = E.memory_capacity(np.eye(4, k=-1), [scale, 0, 0, 0], rng=rng(0), max_delay=6)
    np.testing.assert_allclose(got.per_delay[:4], 1.0, atol=1e-9)
    np.testing.assert_allclose(got.per_delay, reference.per_delay, atol=1e-9)
    assert abs(got.total - 3.0) < 0.01


def test_H4_memory_capacity_of_a_tanh_reservoir_with_tiny_input_is_the_linear_one() -> None:
    # tanh(x) = x to rounding for |x| < 1e-9: the states are those of the linear reservoir.
    W = E.echo_state_reservoir(8, 0.8, rng=rng(5))
    w = rng(6).standard_normal(8)
    lin = E.memory_capacity(W, w, rng=rng(0), steps=400, max_delay=10)
    tiny = E.memory_capacity(W, 1e-20 * w, rng=rng(0), steps=400, max_delay=10, activation="tanh")
    np.testing.assert_allclose(tiny.per_delay, lin.per_delay, atol=1e-8)


@pytest.mark.parametrize("coupling", [1e80, 1e150])
def test_H7_fisher_memory_of_a_strongly_non_normal_pair_is_exact(coupling) -> None:
    # Before: [1, 1, 1.0625, 0.625] at 1e80, whose sum 3.69 exceeds k = 2.
    J = E.fisher_memory([[0.5, coupling], [0.0, 0.5]], [0.0, 1.0], max_delay=3)
    np.testing.assert_allclose(J, [0.9375, 0.375, 0.33984375, 0.19921875], rtol=1e-12)


def test_H7_fisher_memory_refuses_what_float64_cannot_hold() -> None:
    # Before: [0.8, 0.2, 0.05, 0.0125] at 1e200, with only an overflow warning.
    with pytest.raises(ValueError, match="non-normal for float64"):
        E.fisher_memory([[0.5, 1e200], [0.0, 0.5]], [0.0, 1.0], max_delay=3)


@pytest.mark.parametrize("exponent", [-500, -30, 30, 500])
def test_scale_fisher_memory_is_quadratic_in_v(exponent) -> None:
    W = E.echo_state_reservoir(6, 0.9, rng=rng(7))
    v = rng(8).standard_normal(6)
    J = E.fisher_memory(W, v, max_delay=8)
    np.testing.assert_array_equal(
        E.fisher_memory(W, np.ldexp(v, exponent), max_delay=8), np.ldexp(J, 2 * exponent)
    )


def test_scale_fisher_memory_refuses_a_result_beyond_float64() -> None:
    with pytest.raises(ValueError, match="beyond float64's range"):
        E.fisher_memory(0.5 * np.eye(3), [1e300, 0.0, 0.0], max_delay=3)


def _rnn(dtype=np.float64) -> E.ElmanRNN:
    return E.ElmanRNN.create(0.5 * np.eye(3), 2, 1, rng=rng(0), dtype=dtype)


def _targets_of_width(width: int, fill: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Adding-problem inputs (4 sequences of 4 steps) with targets of the given width and value."""
    x, _ = E.adding_problem(4, 4, rng=rng(0))
    return x, np.full((4, width), fill)


def _fit_rnn(data, *, net=None, **options):
    """Train `net` (default: the 3-unit network) with eiginit.fit, one epoch of SGD."""
    model, params = E.engine.RNNModel.from_network(_rnn() if net is None else net,
                                                   dtype=(net or _rnn()).dtype)  # fmt: skip
    options = {"lr": 0.01, "seeds": 0, "optimizer": "sgd", "epochs": 1, "batch_size": 2} | options
    return E.fit(model, params, data, **options)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_targets_of_width(2), r"targets y must have one row of 1 output\(s\).*got shape \(4, 2\)"),
        (_targets_of_width(1, np.nan), "data.y_train must be finite"),
    ],
    ids=["targets of the wrong width", "NaN targets"],
)
def test_M8_fit_rnn_blames_the_data_not_the_networks(data, match) -> None:
    # Before (train_rnn): "grad_output must have the output's shape", and NaN targets made every
    # model diverged=True. fit keeps the fix: the data is named.
    with pytest.raises(ValueError, match=match):
        _fit_rnn(data)


def test_scale_fit_rnn_refuses_targets_a_float32_network_cannot_hold() -> None:
    # Before: the cast made the targets inf and the model was reported diverged.
    with pytest.raises(ValueError, match=r"data\.y_train has entries beyond float32"):
        _fit_rnn(_targets_of_width(1, 1e300), net=_rnn(np.float32))


def test_scale_float32_training_refuses_a_rate_beyond_float32() -> None:
    # Before: the rate became inf in float32 and the models were reported diverged.
    with pytest.raises(ValueError, match="lr has entries beyond float32"):
        _fit_rnn(_targets_of_width(1), net=_rnn(np.float32), lr=1e300)
    net = E.MLP.create([6, 4, 2], "tanh", _init, rng=rng(0), dtype=np.float32)
    with pytest.raises(ValueError, match="lrs must fit the networks' dtype float32"):
        E.train_batched([net], _toy_data(), lrs=1e300, seeds=0, epochs=1)


def test_M8_fit_rnn_checks_the_inputs() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(batch, T, 2\)"):
        _fit_rnn((np.ones((4, 4, 3)), np.ones((4, 1))))


def test_M9_elman_create_refuses_a_complex_w_rec() -> None:
    with pytest.raises(TypeError, match=r"w_rec must hold real numbers.*complex"):
        E.ElmanRNN.create(0.5 * np.eye(3) + 0.5j, 2, 1, rng=rng(0))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: E.ElmanRNN.create([[1.0, 2.0], [3.0]], 2, 1, rng=rng(0)), "w_rec"),
        (lambda: _rnn().forward([[1.0, 2.0], [3.0]]), "x"),
        (lambda: _fit_rnn(_targets_of_width(1), lr=[[1, 2], [3]]), "lr"),
    ],
    ids=["ElmanRNN.create", "ElmanRNN.forward", "fit"],
)  # fmt: skip
def test_L1_recurrent_refuses_ragged_input_naming_it(call, name) -> None:
    with pytest.raises(TypeError, match=f"^{name} must be an array of (positive )?real numbers"):
        call()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: E.ElmanRNN.create({}, 2, 1, rng=rng(0)), "w_rec must hold real numbers"),
        (lambda: _fit_rnn(_targets_of_width(1), lr=0.05 + 1j), "lr must hold positive real"),
    ],
    ids=["ElmanRNN.create dict", "fit complex lr"],
)  # fmt: skip
def test_L2_recurrent_refuses_the_wrong_kind_of_object(call, match) -> None:
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize("lr", [True, "0.01", [True, True]])
def test_L3_fit_rnn_refuses_numbers_in_disguise(lr) -> None:
    net = E.ElmanRNN.create(np.stack([0.5 * np.eye(3)] * 2), 2, 1, rng=rng(0))
    with pytest.raises(TypeError, match=r"^lr must"):
        _fit_rnn(_targets_of_width(1), net=net, lr=lr, seeds=[0, 1])


def test_L6_echo_state_reservoir_refuses_a_size_the_allocator_would() -> None:
    with pytest.raises(ValueError, match=r"reservoir would hold 1e.12 entries.*use smaller k"):
        E.echo_state_reservoir(10**6, 0.9, rng=rng(0))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: E.adding_problem(10**9, 10**9, rng=rng(0)), "batch or steps"),
        (lambda: E.fisher_memory(0.5 * np.eye(2), [1.0, 0.0], max_delay=10**12), "max_delay"),
        (
            lambda: E.memory_capacity(0.5 * np.eye(2), [1.0, 0.0], rng=rng(0), steps=10**12),
            "washout, steps",
        ),
        (lambda: E.ElmanRNN.create(np.eye(2), 10**9, 1, rng=rng(0)), "input_size"),
        (lambda: _fit_rnn(_targets_of_width(1), epochs=10**12), "epochs"),
    ],
    ids=["adding_problem", "fisher_memory", "memory_capacity", "ElmanRNN.create", "fit"],
)  # fmt: skip
def test_L6_other_sizes_are_refused_before_the_allocator(call, match) -> None:
    # The same class as L6: sizes that numpy would refuse with a MemoryError, or swap for.
    with pytest.raises(ValueError, match=match):
        call()


def test_L6_hessian_and_batched_sizes_are_refused_before_the_allocator(tiny_problem) -> None:
    net, x, y = tiny_problem
    with pytest.raises(ValueError, match="max_iter"):
        E.hessian_top_eigenvalue(net, x, y, rng=rng(1), max_iter=10**12)
    mlp = E.MLP.create([6, 4, 2], "tanh", _init, rng=rng(0))
    with pytest.raises(ValueError, match="epochs"):
        E.train_batched([mlp], _toy_data(), lrs=0.01, seeds=0, epochs=10**12)


def test_L7_elman_create_names_an_unknown_dtype() -> None:
    with pytest.raises(TypeError, match=r"^dtype must be a numpy float dtype"):
        E.ElmanRNN.create(np.eye(3), 2, 1, rng=rng(0), dtype="abc")


@pytest.mark.parametrize(
    ("grad", "error", "match"),
    [
        (np.full((1, 2, 1), np.nan), ValueError, "grad_output must be finite"),
        (np.full((1, 2, 1), 1 + 1j), TypeError, "grad_output must hold real numbers"),
    ],
    ids=["NaN", "complex"],
)
def test_L9_elman_backward_refuses_nan_and_complex_gradients(grad, error, match) -> None:
    net = _rnn()
    fp = net.forward(np.ones((2, 4, 2)))
    with pytest.raises(error, match=match):
        net.backward(fp, grad)


def test_L9_fit_rnn_still_reports_divergence() -> None:
    # backward's finiteness check must not turn a diverging run into an exception: RNNModel
    # uses the unchecked passes, and fit marks the replica diverged.
    result = _fit_rnn(E.adding_problem(12, 4, rng=rng(0)), lr=1e300, epochs=2, batch_size=4)
    assert result.diverged.all()
    assert np.isnan(result.train_loss[0, -1])


@pytest.mark.parametrize(
    "call",
    [
        lambda: E.ElmanRNN.create(1e300 * np.eye(3), 2, 1, rng=rng(0), dtype=np.float32),
        lambda: _rnn(np.float32).forward(np.full((2, 3, 2), 1e300)),
    ],
    ids=["w_rec", "x"],
)
def test_scale_float32_rnn_refuses_values_it_cannot_hold(call) -> None:
    # Before: cast to inf without a word.
    with pytest.raises(ValueError, match="beyond float32's range"):
        call()


def test_scale_elman_passes_refuse_an_overflow_instead_of_returning_inf() -> None:
    # Before: forward returned inf and NaN states without a word.
    W = np.stack([0.5 * np.eye(3), 3.0 * np.eye(3)])
    net = E.ElmanRNN.create(W, 1, 1, rng=rng(0), activation="linear")
    with pytest.raises(ValueError, match=r"forward pass overflowed.*model\(s\) \[1\]"):
        net.forward(np.ones((2, 800, 1)))
    fp = net.forward(np.ones((2, 50, 1)))
    with pytest.raises(ValueError, match="backward pass overflowed"):
        net.backward(fp, np.full((2, 2, 1), 1e300))


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e200])
def test_scale_step_norms_of_gradients_of_any_size(scale) -> None:
    # Before: squares of 1e200 overflowed to inf, squares of 1e-300 underflowed to 0.
    net = E.ElmanRNN.create(np.stack([0.5 * np.eye(3)]), 1, 1, rng=rng(0), activation="linear")
    fp = net.forward(np.ones((2, 20, 1)))
    unit = net.backward(fp, np.ones((1, 2, 1))).step_norms
    scaled = net.backward(fp, np.full((1, 2, 1), scale)).step_norms
    np.testing.assert_allclose(scaled / scale, unit, rtol=1e-14)


def test_scale_fit_rnn_refuses_a_network_with_nan_weights() -> None:
    # Before: the model was reported diverged, a fault of the weights it was given.
    net = _rnn()
    net.w_rec[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"parameters must be finite, got NaN or inf in array 1"):
        E.engine.RNNModel.from_network(net)
    model, params = E.engine.RNNModel.from_network(_rnn(), dtype=np.float64)
    params[1][0, 0, 0] = np.nan  # parameters built by hand reach fit itself
    with pytest.raises(ValueError, match=r"params\[1\] must be finite.*replica\(s\) \[0\]"):
        E.fit(model, params, _targets_of_width(1), lr=0.1, seeds=0, epochs=1)


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("scale", [1e300, 1e200, 1e-200, 1e-300, 5e-324])
def test_H5_standardize_features_of_any_size(scale) -> None:
    train, test = E.standardize([[scale], [-scale]], [[scale]])
    np.testing.assert_array_equal(train, [[1.0], [-1.0]])
    np.testing.assert_array_equal(test, [[1.0]])


def test_H5_standardize_keeps_ordinary_and_constant_columns() -> None:
    tr, te = E.standardize([[0.0, 5.0, 1e250], [2.0, 5.0, 3e250]], [[1.0, 6.0, 2e250]])
    np.testing.assert_array_equal(tr, [[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(te, [[0.0, 1.0, 0.0]])


def test_H5_standardize_refuses_a_test_set_beyond_float64() -> None:
    with pytest.raises(ValueError, match="x_test"):
        E.standardize([[1e-300], [-1e-300]], [[1e300]])


def test_L7_load_digits_refuses_dtype_none() -> None:
    # np.dtype(None) is float64: None used to pass for float64 silently.
    with pytest.raises(TypeError, match=r"^dtype must be np.float32 or np.float64, got None"):
        E.load_digits(rng=rng(0), dtype=None)


# --------------------------------------------------------------------------- batched


def _toy_data(scale: float = 1.0) -> Dataset:
    xs = rng(50).standard_normal((120, 6))
    ys = (xs[:, 0] > 0).astype(int)
    return Dataset(scale * xs[:80], ys[:80], xs[100:], ys[100:], 2, "toy", xs[80:100], ys[80:100])


def test_L2_train_batched_betas_must_be_a_pair() -> None:
    net = E.MLP.create([6, 4, 2], "tanh", _init, rng=rng(0))
    with pytest.raises(TypeError, match=r"betas must be a pair \(beta1, beta2\), got float"):
        E.train_batched([net], _toy_data(), lrs=0.01, seeds=0, betas=0.9)


def test_scale_train_batched_refuses_data_its_float32_networks_cannot_hold() -> None:
    # Before: the cast made the inputs inf and every replica was reported diverged.
    net = E.MLP.create([6, 4, 2], "tanh", _init, rng=rng(0), dtype=np.float32)
    with pytest.raises(ValueError, match=r"data.x_train has entries beyond"):
        E.train_batched([net], _toy_data(1e300), lrs=0.01, seeds=0, epochs=1)
