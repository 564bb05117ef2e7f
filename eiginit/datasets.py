"""Real datasets that load offline: the 8 x 8 handwritten digits and MNIST-1D.

Used by the chapter "Does it train?" (Part IV), the training sections of Part V and their tests.

- The 1,797 images of the UCI optical-recognition digits (Alpaydin & Kaynak 1998) ship inside the
  scikit-learn wheel, so :func:`load_digits` never touches the network. It returns a seeded,
  stratified train/test split with inputs standardized by the training set's statistics.
- MNIST-1D (Greydanus 2020) is generated on the spot by the ``mnist1d`` package's own recipe
  (:func:`load_mnist1d`): 5,000 one-dimensional signals of length 40 made from ten digit
  templates, split 4,000 / 1,000 as the package does; nothing is downloaded.

scikit-learn and mnist1d are optional dependencies of ``eiginit`` (extras ``docs`` and ``test``);
the rest of the package does not need them.
"""

from __future__ import annotations

import numbers
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    _as_real_array,
    _describe,
    as_array_of,
    check_float_dtype,
    check_rng,
)

__all__ = ["Dataset", "load_digits", "load_mnist1d", "standardize", "stratified_split"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into a training and a test set.

    Attributes
    ----------
    x_train : numpy.ndarray, shape (n_train, n_features)
        Standardized training inputs, one example per row.
    y_train : numpy.ndarray of int64, shape (n_train,)
        Training labels in ``0 .. n_classes - 1``.
    x_test : numpy.ndarray, shape (n_test, n_features)
        Test inputs, standardized with the *training* mean and standard deviation.
    y_test : numpy.ndarray of int64, shape (n_test,)
        Test labels.
    n_classes : int
        The number of classes.
    name : str
        A short description of where the data came from.
    x_val : numpy.ndarray or None, shape (n_val, n_features)
        Validation inputs held out of the training set (None when there is no validation split).
        Every choice (learning rate, early stopping) is made on them; the test set is looked at
        once, at the end.
    y_val : numpy.ndarray of int64 or None, shape (n_val,)
        Validation labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, numbers.Integral):
            raise TypeError(f"n_classes must be an integer, got {_describe(self.n_classes)}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {_describe(self.name)}")
        if (self.x_val is None) != (self.y_val is None):
            raise ValueError("x_val and y_val must be given together (or both left as None)")
        splits = ("train", "test") + (("val",) if self.x_val is not None else ())
        for split in splits:
            x = _as_inputs(getattr(self, f"x_{split}"), f"x_{split}")
            y = _as_labels(getattr(self, f"y_{split}"), f"y_{split}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"y_{split} must have one label per row of x_{split}: got {y.shape[0]} labels "
                    f"for {x.shape[0]} rows"
                )
            if y.max() >= self.n_classes:
                raise ValueError(
                    f"y_{split} holds the label {y.max()}, but n_classes = {self.n_classes} "
                    f"(labels 0..{self.n_classes - 1})"
                )
            if x.shape[1] != _as_inputs(self.x_train, "x_train").shape[1]:
                raise ValueError(
                    f"x_{split} has {x.shape[1]} features but x_train has {self.x_train.shape[1]}"
                )
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)

    @property
    def n_features(self) -> int:
        """The input width (64 for the 8 x 8 digits)."""
        return int(self.x_train.shape[1])


def stratified_split(
    labels: Any, test_fraction: float, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return train and test indices that keep every class's share in both parts.

    For each class with :math:`m` examples, ``round(test_fraction * m)`` of them, chosen at
    random, go to the test set and the rest to the training set, so each class is represented
    in both in the same proportion (up to rounding).

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class labels (any non-negative integers).
    test_fraction : float
        The share of each class held out for testing, strictly between 0 and 1.
    rng : numpy.random.Generator
        The source of randomness for the shuffle.

    Returns
    -------
    train, test : numpy.ndarray of int64
        Sorted, disjoint indices into `labels` that together cover every example.

    Raises
    ------
    TypeError
        If `labels` are not integers or `rng` is not a Generator.
    ValueError
        If `test_fraction` is not in (0, 1), or a class is too small to appear in both parts.

    Examples
    --------
    >>> train, test = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.5, rng=np.random.default_rng(0))
    >>> len(train), len(test), sorted(np.array([0, 0, 0, 0, 1, 1, 1, 1])[test].tolist())
    (4, 4, [0, 0, 1, 1])
    """
    check_rng(rng)
    y = _as_labels(labels, "labels")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a real number, got {_describe(test_fraction)}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    test: list[np.ndarray] = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        n_test = round(test_fraction * members.size)
        if n_test == 0 or n_test == members.size:
            raise ValueError(
                f"class {cls} has {members.size} examples: too few to put some in both the "
                f"training and the test set with test_fraction={test_fraction}"
            )
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(y.size), test_idx).astype(np.int64)
    return train_idx, test_idx


def standardize(x_train: Any, x_test: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Standardize both sets with the training set's per-feature mean and standard deviation.

    .. math:: \tilde x_{ij} = (x_{ij} - \mu_j) / s_j

    where :math:`\mu_j, s_j` are the mean and (population) standard deviation of feature
    :math:`j` over the *training* rows, so no information leaks from the test set. Features that
    are constant on the training set (corner pixels of the digits are always blank) get
    :math:`s_j = 1`: they are centred, not blown up.

    Parameters
    ----------
    x_train : array_like, shape (n_train, n_features)
    x_test : array_like, shape (n_test, n_features)

    Returns
    -------
    x_train, x_test : numpy.ndarray of float64
        New arrays; the training set has mean 0 and standard deviation 1 (or 0) per feature.

    Examples
    --------
    >>> tr, te = standardize([[0.0, 5.0], [2.0, 5.0]], [[1.0, 6.0]])
    >>> tr.tolist(), te.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0]])
    """
    train = _as_real_array(x_train, "x_train")
    test = _as_real_array(x_test, "x_test")
    if train.ndim != 2 or train.shape[0] == 0:
        raise ValueError(f"x_train must be a non-empty 2-D array, got shape {train.shape}")
    if test.ndim != 2 or test.shape[1] != train.shape[1]:
        raise ValueError(
            f"x_test must be 2-D with {train.shape[1]} features like x_train, "
            f"got shape {test.shape}"
        )
    # Each column is first divided by a power of two that brings its largest training entry
    # into [0.5, 1) (exact, and without effect on the result in exact arithmetic): squares of
    # 1e200 would overflow and squares of 1e-200 underflow inside std.
    exponent = np.frexp(np.max(np.abs(train), axis=0))[1]
    scaled_train = np.ldexp(train, -exponent)
    mean = scaled_train.mean(axis=0)
    std = scaled_train.std(axis=0)
    constant = ~(std > 0)
    std = np.where(constant, 1.0, std)
    with np.errstate(over="ignore", invalid="ignore"):
        train_out = (scaled_train - mean) / std
        test_out = (np.ldexp(test, -exponent) - mean) / std
        if constant.any():  # centred in the original units, not scaled
            centre = train[:, constant].mean(axis=0)
            train_out[:, constant] = train[:, constant] - centre
            test_out[:, constant] = test[:, constant] - centre
    if not np.all(np.isfinite(test_out)):
        raise ValueError(
            "x_test standardized is beyond float64's range: some of its entries lie more than "
            "1.8e308 training standard deviations from the training mean"
        )
    return train_out, test_out


def load_digits(
    *,
    rng: np.random.Generator,
    test_fraction: float = 0.25,
    validation_fraction: float = 0.2,
    dtype: Any = np.float32,
) -> Dataset:
    """Load the 8 x 8 handwritten digits, split and standardized, without any download.

    The 1,797 grey-level images (pixel values 0..16) of the UCI "Optical Recognition of
    Handwritten Digits" test set (Alpaydin & Kaynak 1998) are stored inside the scikit-learn
    package and read from disk by :func:`sklearn.datasets.load_digits`. Each image is
    flattened to 64 features; the classes 0..9 are nearly balanced (174 to 183 images each).
    The split is :func:`stratified_split`, applied twice: first the test set, then a share
    `validation_fraction` of what remains as the validation set (as :func:`load_mnist1d` does).
    The scaling is :func:`standardize`, with the statistics of the remaining training rows only.

    Parameters
    ----------
    rng : numpy.random.Generator
        Chooses the train/validation/test split.
    test_fraction : float, default 0.25
        The share of each class held out for testing.
    validation_fraction : float, default 0.2
        The share of each class of the non-test images held out for validation, in [0, 1);
        0 gives no validation set.
    dtype : numpy dtype, default float32
        ``np.float32`` (the book trains in single precision) or ``np.float64``.

    Returns
    -------
    Dataset

    Raises
    ------
    ImportError
        If scikit-learn is not installed (it ships the data).

    Examples
    --------
    >>> data = load_digits(rng=np.random.default_rng(0))
    >>> data.x_train.shape, data.x_val.shape, data.x_test.shape, data.n_classes
    ((1078, 64), (269, 64), (450, 64), 10)
    """
    check_rng(rng)
    dtype = _check_float_dtype(dtype)
    validation_fraction = _check_validation_fraction(validation_fraction)
    try:
        from sklearn.datasets import load_digits as _sklearn_load_digits
    except ImportError as error:
        raise ImportError(
            "eiginit.load_digits needs scikit-learn, whose wheel ships the 8 x 8 digits "
            "(nothing is downloaded). Install it with `pip install scikit-learn` or "
            "`pip install 'eiginit[docs]'`."
        ) from error
    bunch = _sklearn_load_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    rest, test = stratified_split(y, test_fraction, rng=rng)
    if validation_fraction > 0:
        train_in_rest, val_in_rest = stratified_split(y[rest], validation_fraction, rng=rng)
        train, val = rest[train_in_rest], rest[val_in_rest]
    else:
        train, val = rest, np.arange(0)
    x_train, x_test = standardize(x[train], x[test])
    x_val = standardize(x[train], x[val])[1] if val.size else None
    return Dataset(
        x_train=x_train.astype(dtype),
        y_train=y[train],
        x_test=x_test.astype(dtype),
        y_test=y[test],
        n_classes=int(y.max()) + 1,
        name="scikit-learn 8 x 8 digits (UCI optical recognition of handwritten digits)",
        x_val=x_val.astype(dtype) if x_val is not None else None,
        y_val=y[val] if val.size else None,
    )


def load_mnist1d(
    *, rng: np.random.Generator, validation_fraction: float = 0.2, dtype: Any = np.float32
) -> Dataset:
    """Make MNIST-1D locally with its package's default recipe, and split off a validation set.

    MNIST-1D (Greydanus 2020, "Scaling down deep learning", arXiv:2011.14439) turns ten 1-D digit
    templates into 5,000 signals of length 40 by padding, shearing, scaling, translating and adding
    correlated and i.i.d. noise. ``mnist1d.data.make_dataset`` with
    ``mnist1d.data.get_dataset_args`` (the package's defaults: seed 42, 80 % train) builds the
    same 4,000 training and 1,000 test signals as the published file, without a download; the
    package's ``get_dataset`` would try to download it instead. The generator seeds numpy's and
    Python's *global* random state, so this function saves both states and restores them: a
    caller's own draws are unaffected.

    A stratified share `validation_fraction` of the 4,000 training signals (chosen by `rng`) is
    held out as the validation set. Inputs are shifted and scaled by one mean and one standard
    deviation of the remaining training signals (a scalar, as the package does, so every position
    of the signal is treated alike, which a convolution expects).

    Parameters
    ----------
    rng : numpy.random.Generator
        Chooses the validation split (the signals themselves are fixed by the recipe).
    validation_fraction : float, default 0.2
        The share of each class of the 4,000 training signals held out for validation, in
        [0, 1); 0 gives no validation set.
    dtype : numpy dtype, default float32
        ``np.float32`` or ``np.float64``.

    Returns
    -------
    Dataset
        40 features, 10 classes; ``x_val``/``y_val`` hold the validation set.

    Raises
    ------
    ImportError
        If the ``mnist1d`` package is not installed.

    Examples
    --------
    >>> data = load_mnist1d(rng=np.random.default_rng(0))
    >>> data.x_train.shape, data.x_val.shape, data.x_test.shape, data.n_classes
    ((3200, 40), (800, 40), (1000, 40), 10)
    """
    check_rng(rng)
    dtype = _check_float_dtype(dtype)
    validation_fraction = _check_validation_fraction(validation_fraction)
    x, y, x_test, y_test = _mnist1d_arrays()
    if validation_fraction > 0:
        train, val = stratified_split(y, float(validation_fraction), rng=rng)
    else:
        train, val = np.arange(y.size), np.arange(0)
    mean, std = x[train].mean(), x[train].std()

    def scale(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(dtype)

    return Dataset(
        x_train=scale(x[train]),
        y_train=y[train],
        x_test=scale(x_test),
        y_test=y_test.copy(),
        n_classes=10,
        name="MNIST-1D (Greydanus 2020), made locally with the mnist1d package's defaults",
        x_val=scale(x[val]) if val.size else None,
        y_val=y[val] if val.size else None,
    )


def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return MNIST-1D's (x, y, x_test, y_test) as made by the package, global state restored."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError(
            "eiginit.load_mnist1d needs the mnist1d package, which generates the data locally "
            "(nothing is downloaded). Install it with `pip install mnist1d` or "
            "`pip install 'eiginit[docs]'`."
        ) from error
    # The generator seeds the global states; save and restore them (the point of this wrapper).
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        made = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)
    return (
        np.asarray(made["x"], dtype=np.float64),
        np.asarray(made["y"], dtype=np.int64),
        np.asarray(made["x_test"], dtype=np.float64),
        np.asarray(made["y_test"], dtype=np.int64),
    )


def _check_validation_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"validation_fraction must be a real number, got {_describe(value)}")
    if not 0 <= value < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {value}")
    return float(value)


def _check_float_dtype(dtype: Any) -> np.dtype:
    """Return *dtype* as float32 or float64 (None refused), or raise an error naming it."""
    return check_float_dtype(dtype, "dtype")


def _as_labels(labels: Any, name: str) -> np.ndarray:
    """Return *labels* as a non-empty 1-D int64 array of non-negative integers."""
    array = as_array_of(labels, name, kinds="iu", what="integers (class indices)", layout="flat")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if array.min() < 0:
        raise ValueError(f"{name} must be non-negative class indices, got minimum {array.min()}")
    return array.astype(np.int64)


def _as_inputs(x: Any, name: str) -> np.ndarray:
    """Return *x* as a 2-D array of finite real numbers with at least one row (dtype kept)."""
    if isinstance(x, str | bytes) or x is None:
        raise TypeError(f"{name} must be a 2-D array of real numbers, got {_describe(x)}")
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a 2-D array of real numbers, got {_describe(x)}"
        ) from error
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got {_describe(x)}"
            + (" (complex input is not supported)" if array.dtype.kind == "c" else "")
        )
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array (examples, features), got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entries")
    return array
