r"""Comparing contenders over seeds: Welch's interval, Holm's correction and the word for it.

A page that compares two initializations over a few seeds reports the difference of the mean
scores with Welch's interval (unequal variances). A page that quotes several such comparisons
controls the chance of *any* false separation among them with Holm's step-down correction
(Holm 1979, *Scand. J. Statist.* 6, 65-70): with :math:`m` p-values sorted,
:math:`p_{(1)} \le \dots \le p_{(m)}`, the adjusted p-values are

.. math::

    \tilde p_{(i)} = \max_{j \le i} \min\big(1, (m - j + 1)\, p_{(j)}\big),

and a comparison separates its contenders when :math:`\tilde p \le \alpha`. It rejects everything
Bonferroni rejects, and sometimes more, with the same family-wise error guarantee. A comparison
that does not separate is a *tie*: "not separated at this number of seeds", never "equal".

:func:`verdicts` does all three for a page: one Welch comparison per named pair, Holm across the
family, and a word from the adjusted p-value. Only numpy and the standard library are needed (the
Student-t distribution is computed here from the regularized incomplete beta function).
"""

from __future__ import annotations

import html
import math
import numbers
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from eiginit._checks import _describe, as_real_array, check_int, check_positive_float

__all__ = [
    "Comparison",
    "Contender",
    "RateChoice",
    "Trial",
    "Welch",
    "choose_rate",
    "holm",
    "resolvable_difference",
    "run_trial",
    "seeds_needed",
    "student_t_quantile",
    "verdict_table",
    "verdicts",
    "welch",
]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-16:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Return the regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
                 + b * math.log1p(-x))  # fmt: skip
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def student_t_quantile(probability: float, df: float) -> float:
    r"""Return the `probability` quantile of Student's t with `df` > 0 degrees of freedom.

    Found by bisection on the distribution function, :math:`1 - \tfrac12 I_{\nu/(\nu+t^2)}
    (\nu/2, 1/2)` for :math:`t > 0`, to about 1e-12.

    Examples
    --------
    >>> round(student_t_quantile(0.975, 4), 4)  # the 95 % interval of 5 seeds
    2.7764
    """
    p = check_positive_float(probability, "probability")
    df = check_positive_float(df, "df")
    if p >= 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    target = 2.0 * (1.0 - p)  # the two-sided tail beyond the quantile
    low, high = 0.0, 1.0
    while _two_sided_p(high, df) > target:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _two_sided_p(mid, df) > target else (low, mid)
        if high - low <= 1e-13 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Welch:
    """Welch's comparison of two samples' means (unequal variances).

    Attributes
    ----------
    difference : float
        ``mean(a) - mean(b)``.
    low, high : float
        The interval for the difference at the requested confidence.
    p_value : float
        Two-sided p-value of "the means are equal".
    df : float
        Welch-Satterthwaite degrees of freedom (inf when neither sample varies).
    """

    difference: float
    low: float
    high: float
    p_value: float
    df: float


def welch(a: Any, b: Any, *, confidence: float = 0.95) -> Welch:
    r"""Compare the means of `a` and `b` with Welch's t interval and test.

    .. math::

        d = \bar a - \bar b, \quad s^2 = \frac{s_a^2}{n_a} + \frac{s_b^2}{n_b}, \quad
        \nu = \frac{s^4}{\frac{(s_a^2/n_a)^2}{n_a - 1} + \frac{(s_b^2/n_b)^2}{n_b - 1}}, \quad
        d \pm t_{\nu}\, s,

    with the sample variances :math:`s_a^2, s_b^2` (``ddof=1``). When neither sample varies
    (every seed stuck at the same accuracy) the difference is exact: the interval is the point
    :math:`d` and the p-value 0, or 1 if :math:`d = 0`.

    Examples
    --------
    >>> w = welch([50.1, 51.0, 52.3, 49.8, 50.6], [48.2, 49.0, 47.5, 48.8, 49.9])
    >>> round(w.difference, 2), round(w.low, 2), round(w.high, 2), round(w.p_value, 4)
    (2.08, 0.71, 3.45, 0.0081)
    """
    x, y = as_real_array(a, "a").ravel(), as_real_array(b, "b").ravel()
    for name, sample in (("a", x), ("b", y)):
        if sample.size < 2:
            raise ValueError(f"{name} must hold at least 2 values (seeds), got {sample.size}")
    level = check_positive_float(confidence, "confidence")
    if level >= 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = float(x.mean() - y.mean())
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    s2 = va + vb
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread at all (rounding may leave s2 at 1e-34)
        return Welch(d, d, d, 0.0 if d != 0 else 1.0, math.inf)
    df = s2 * s2 / (va * va / (x.size - 1) + vb * vb / (y.size - 1))
    s = math.sqrt(s2)
    half = student_t_quantile(0.5 + level / 2, df) * s
    return Welch(d, d - half, d + half, _two_sided_p(d / s, df), df)


def holm(p_values: Any, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    r"""Holm's step-down correction of a family of p-values.

    Sort the :math:`m` p-values, multiply the :math:`j`-th smallest by :math:`m - j + 1`, cap at
    1 and make the sequence non-decreasing: those are the adjusted p-values, in the input's
    order. A hypothesis is rejected when its adjusted p-value is :math:`\le \alpha`; the chance
    of rejecting any true one is at most :math:`\alpha` (Holm 1979).

    Returns
    -------
    adjusted : numpy.ndarray
        The adjusted p-values.
    reject : numpy.ndarray of bool
        ``adjusted <= alpha``.

    Examples
    --------
    >>> adjusted, reject = holm([0.01, 0.04, 0.03, 0.005])
    >>> adjusted.round(3).tolist(), reject.tolist()
    ([0.03, 0.06, 0.06, 0.02], [True, False, False, True])
    """
    p = as_real_array(p_values, "p_values")
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values must be a non-empty flat list, got {_describe(p_values)}")
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    level = check_positive_float(alpha, "alpha")
    if level >= 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted, adjusted <= level


@dataclass(frozen=True)
class Comparison:
    """One comparison of a family: Welch's numbers, Holm's adjusted p-value and its word.

    Attributes
    ----------
    welch : Welch
    adjusted_p : float
        Holm's adjusted p-value within the family.
    separated : bool
        Whether the comparison survives Holm's correction (``adjusted_p <= alpha``).
    word : str
        ``words[2]`` ("ahead") or ``words[0]`` ("behind") when the comparison survives Holm's
        correction, ``words[1]`` ("a tie") when it does not.
    family : int
        How many comparisons the family holds.
    """

    welch: Welch
    adjusted_p: float
    separated: bool
    word: str
    family: int


def verdicts(
    pairs: Mapping[str, tuple[Any, Any]],
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    words: Sequence[str] = ("behind", "a tie", "ahead"),
) -> dict[str, Comparison]:
    """Compare every named pair of samples, correct the family with Holm, and call each one.

    Parameters
    ----------
    pairs : mapping of str to (a, b)
        The comparisons a page quotes: each a pair of per-seed scores, ``a`` against ``b``.
    alpha : float, default 0.05
        The family-wise error rate.
    confidence : float, default 0.95
        The confidence of each Welch interval (uncorrected; the word follows Holm).
    words : three str
        The words for "a below b", "not separated" and "a above b".

    Returns
    -------
    dict
        One :class:`Comparison` per name, in the order of `pairs`.

    Examples
    --------
    >>> calls = verdicts({"x": ([5.0, 5.2, 5.1], [4.0, 4.1, 3.9]), "y": ([1, 2, 3], [1, 2, 4])})
    >>> calls["x"].word, calls["y"].word
    ('ahead', 'a tie')
    """
    if not isinstance(pairs, Mapping) or not pairs:
        raise TypeError(
            f"pairs must be a non-empty mapping of name to (a, b), got {_describe(pairs)}"
        )
    if isinstance(words, str) or len(words) != 3 or not all(isinstance(w, str) for w in words):
        raise TypeError(f"words must be three strings (below, tie, above), got {words!r}")
    tests = {name: welch(*pair, confidence=confidence) for name, pair in pairs.items()}
    adjusted, reject = holm([t.p_value for t in tests.values()], alpha=alpha)
    out = {}
    for (name, t), p, r in zip(tests.items(), adjusted, reject, strict=True):
        word = words[1] if not r else (words[2] if t.difference > 0 else words[0])
        out[name] = Comparison(t, float(p), bool(r), word, len(tests))
    return out


# ----------------------------------------------------------------------------- how many seeds
def seeds_needed(
    spread: float,
    difference: float,
    *,
    comparisons: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    r"""Seeds per contender that resolve a true `difference`, given the per-seed `spread`.

    Two contenders with `n` seeds each and per-seed standard deviation :math:`\sigma` give a
    difference of means with standard error :math:`\sigma\sqrt{2/n}`. A two-sided test at level
    :math:`\alpha/m` (Holm's strictest step over a page's :math:`m` comparisons, i.e.
    Bonferroni) separates a true difference :math:`\delta` with probability `power` when

    .. math::

        n \ge 2\, \big(t_{1-\alpha/(2m),\, 2n-2} + t_{\mathrm{power},\, 2n-2}\big)^2\,
        \frac{\sigma^2}{\delta^2},

    the usual sample-size formula for two means with Student's quantiles in place of the normal
    ones (e.g. Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*, sec. 3.2).
    The smallest such `n`, and at least 3, is returned. With equal spreads Welch's test is
    Student's, so the count holds for the comparisons :func:`verdicts` makes.

    Parameters
    ----------
    spread : float
        The per-seed standard deviation (a pilot's), >= 0.
    difference : float
        The smallest difference of means that must be resolved, in the units of `spread`;
        its sign is ignored, and it must not be 0.
    comparisons : int, default 1
        How many comparisons the page quotes (Holm's family).
    alpha : float, default 0.05
        The family-wise error rate.
    power : float, default 0.8
        The chance of separating a true `difference`, in (0, 1).

    Returns
    -------
    int

    Examples
    --------
    A difference of one standard deviation, one comparison: 17 seeds each (the normal
    approximation gives 15.7).

    >>> seeds_needed(1.0, 1.0)
    17
    >>> seeds_needed(1.0, 1.0, comparisons=6) > seeds_needed(1.0, 1.0)
    True
    """
    sigma = float(as_real_array(spread, "spread"))
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"spread must be a finite standard deviation >= 0, got {spread!r}")
    delta = abs(float(as_real_array(difference, "difference")))
    if not math.isfinite(delta) or delta == 0:
        raise ValueError(f"difference must be finite and non-zero, got {difference!r}")
    m = check_int(comparisons, "comparisons", minimum=1)
    level = check_positive_float(alpha, "alpha")
    if level >= 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    chance = check_positive_float(power, "power")
    if chance >= 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    ratio = (sigma / delta) ** 2
    z = NormalDist().inv_cdf(1 - level / (2 * m)) + NormalDist().inv_cdf(chance)
    start = max(3, math.floor(2 * z * z * ratio))  # Student's quantiles only add seeds
    for n in range(start, 100_001):
        df = 2 * n - 2
        t = student_t_quantile(1 - level / (2 * m), df) + student_t_quantile(chance, df)
        if n >= 2 * t * t * ratio:
            return n
    raise ValueError(
        f"spread/difference = {sigma / delta:.3g} needs more than 100000 seeds per contender; "
        "no study resolves it"
    )


def resolvable_difference(
    spread: float,
    seeds: int,
    *,
    comparisons: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    r"""Return the smallest difference that `seeds` per contender resolve (seeds_needed inverted).

    The smallest :math:`\delta` with ``seeds_needed(spread, delta, ...) <= seeds`` (to 1e-9
    relative), the yardstick a page quotes beside its ties: a difference below it is not one
    this study could have resolved.

    Examples
    --------
    >>> d = resolvable_difference(1.0, 17)
    >>> seeds_needed(1.0, d) <= 17 < seeds_needed(1.0, 0.99 * d)
    True
    """
    sigma = float(as_real_array(spread, "spread"))
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"spread must be a finite standard deviation > 0, got {spread!r}")
    n = check_int(seeds, "seeds", minimum=3)
    lo, hi = sigma * 1e-6, sigma * 1e3
    if seeds_needed(sigma, hi, comparisons=comparisons, alpha=alpha, power=power) > n:
        raise ValueError(f"{n} seeds resolve no difference below 1000 spreads")
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if seeds_needed(sigma, mid, comparisons=comparisons, alpha=alpha, power=power) <= n:
            hi = mid
        else:
            lo = mid
        if hi / lo < 1 + 1e-9:
            break
    return hi


# ----------------------------------------------------------------------------- the rate
@dataclass(frozen=True)
class RateChoice:
    """The learning rate a contender gets, chosen on validation.

    Attributes
    ----------
    grid : tuple of float
        Every rate tried, ascending (the given grid and any rate added past an edge).
    scores : numpy.ndarray, shape (len(grid), sweep_seeds)
        The validation score of every sweep run (NaN: the run diverged before it could score).
    chosen : float
        The rate with the best mean score (a diverged run counts as the worst).
    widened : int
        How many rates were added past an edge of the given grid.
    on_edge : bool
        Whether the chosen rate is still the first or last of the grid after widening (the
        optimum may lie beyond it: say so).
    higher_is_better : bool
    """

    grid: tuple[float, ...]
    scores: np.ndarray
    chosen: float
    widened: int
    on_edge: bool
    higher_is_better: bool

    @property
    def index(self) -> int:
        """The position of the chosen rate in `grid`."""
        return self.grid.index(self.chosen)

    @property
    def chosen_scores(self) -> np.ndarray:
        """The sweep's scores at the chosen rate, shape (sweep_seeds,)."""
        return self.scores[self.index]


def _mean_scores(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    worst = -np.inf if higher_is_better else np.inf
    filled = np.where(np.isnan(scores), worst, scores)
    means = filled.mean(axis=1)
    return means if higher_is_better else -means


def choose_rate(
    evaluate: Callable[[list[float]], Any],
    grid: Sequence[float],
    *,
    higher_is_better: bool = True,
    max_widen: int = 2,
) -> RateChoice:
    r"""Choose a learning rate on validation; look past the grid's edge when the choice is on it.

    `evaluate(rates)` trains the sweep's seeds at each rate and returns their validation scores.
    The rate with the best mean wins (a diverged run, NaN, counts as the worst score; the
    first of equal means wins). When the winner is the grid's first or last rate, the optimum
    may lie outside, so one more rate is tried one log-step beyond that edge
    (:math:`\eta_0^2/\eta_1` below, :math:`\eta_{k}^2/\eta_{k-1}` above), up to `max_widen` times.
    A choice still on the edge after that is reported (`on_edge`): a chapter says so.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(rates: list[float]) -> array (len(rates), k)`` of validation scores.
    grid : sequence of float
        Distinct positive rates (sorted here).
    higher_is_better : bool, default True
        False for a loss.
    max_widen : int, default 2
        The most rates added past the edges.

    Returns
    -------
    RateChoice

    Examples
    --------
    A score that peaks at 0.03, with a grid that stops at 0.01:

    >>> peak = lambda rates: -np.log10(np.array(rates)[:, None] / 0.03) ** 2
    >>> c = choose_rate(peak, [1e-3, 3e-3, 1e-2])
    >>> round(c.chosen, 4), c.widened, c.on_edge
    (0.03, 2, False)
    """
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable as evaluate(rates), got {_describe(evaluate)}")
    if isinstance(grid, str | bytes) or not isinstance(grid, Sequence | np.ndarray):
        raise TypeError(f"grid must be a sequence of learning rates, got {_describe(grid)}")
    rates = sorted(check_positive_float(r, "each rate of grid") for r in grid)
    if not rates:
        raise ValueError("grid must hold at least one learning rate, got none")
    if len(set(rates)) != len(rates):
        raise ValueError(f"grid must not repeat a rate, got {list(grid)}")
    if not isinstance(higher_is_better, bool | np.bool_):
        raise TypeError(
            f"higher_is_better must be True or False, got {_describe(higher_is_better)}"
        )
    limit = check_int(max_widen, "max_widen", minimum=0)

    def run(new: list[float]) -> np.ndarray:
        out = np.asarray(evaluate(list(new)), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != len(new) or out.shape[1] < 1:
            raise ValueError(
                f"evaluate must return an array of shape ({len(new)}, seeds), got shape {out.shape}"
            )
        return out

    scores = run(rates)
    widened = 0
    while True:
        best = int(np.argmax(_mean_scores(scores, bool(higher_is_better))))
        on_edge = best in (0, len(rates) - 1)
        if not on_edge or widened >= limit or len(rates) < 2:
            break
        new = rates[0] ** 2 / rates[1] if best == 0 else rates[-1] ** 2 / rates[-2]
        if not (math.isfinite(new) and new > 0):
            break
        row = run([new])
        if best == 0:
            rates.insert(0, new)
            scores = np.vstack([row, scores])
        else:
            rates.append(new)
            scores = np.vstack([scores, row])
        widened += 1
    return RateChoice(tuple(rates), scores, rates[best], widened, on_edge, bool(higher_is_better))


# ----------------------------------------------------------------------------- the trial
@dataclass(frozen=True)
class Contender:
    """One initialization (or architecture) entered in a :func:`run_trial`.

    Attributes
    ----------
    name : str
    build : callable
        ``build(rngs) -> (model, params)``: one replica per generator in `rngs`, replica ``r``'s
        weights drawn from ``rngs[r]`` alone (so a replica is the same whichever batch it is
        built in); `model` follows :class:`eiginit.training.engine.Model`.
    fit_options : mapping, optional
        Keywords for :func:`eiginit.fit` that only this contender gets (they override the
        trial's).
    """

    name: str
    build: Callable[[list[np.random.Generator]], tuple[Any, Sequence[np.ndarray]]]
    fit_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {_describe(self.name)}")
        if not callable(self.build):
            raise TypeError(f"build must be callable as build(rngs), got {_describe(self.build)}")
        if not isinstance(self.fit_options, Mapping):
            raise TypeError(f"fit_options must be a mapping, got {_describe(self.fit_options)}")


def _split(data: Any) -> tuple[Any, ...]:
    """Return (x_train, y_train, x_val, y_val, x_test, y_test) with None for a missing test."""
    if hasattr(data, "x_train"):
        out = (data.x_train, data.y_train, data.x_val, data.y_val,
               getattr(data, "x_test", None), getattr(data, "y_test", None))  # fmt: skip
    elif isinstance(data, tuple | list) and len(data) in (4, 6):
        out = tuple(data) + (None, None) * (len(data) == 4)
    else:
        raise TypeError(
            "data must be an eiginit.Dataset with a validation split or a tuple (x_train, "
            f"y_train, x_val, y_val[, x_test, y_test]), got {_describe(data)}"
        )
    if out[2] is None or out[3] is None:
        raise ValueError("data must have a validation split: the protocol chooses rates on it")
    return out


def _stream(seed: int, name: str, phase: int, replica: int, part: int) -> np.random.SeedSequence:
    key = (zlib.crc32(name.encode()), phase, replica, part)
    return np.random.SeedSequence(seed, spawn_key=key)


def _order_seed(seed: int, name: str, phase: int, replica: int) -> int:
    return int(_stream(seed, name, phase, replica, 1).generate_state(2, np.uint64)[0] >> 1)


def _score(model: Any, params: Sequence[np.ndarray], x: Any, y: Any, metric: str) -> np.ndarray:
    from eiginit.training.engine import _as_inputs, _as_targets, _metric

    dtype = params[0].dtype
    xs = _as_inputs(x, "data's scoring inputs", dtype)
    ys = _as_targets(y, "data's scoring targets", xs.shape[0], dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        value = _metric(model, list(params), xs, ys, metric)
    return 100.0 * value if metric == "accuracy" else value


@dataclass(frozen=True)
class Trial:
    """What :func:`run_trial` measured: each contender's rate, final scores and runs.

    Attributes
    ----------
    choices : dict of str to RateChoice
    scores : dict of str to numpy.ndarray
        The final, fresh seeds' scores: accuracy in percent (or the loss) at each run's
        best-validation epoch, on the test split when the data has one, else on validation.
    val_scores : dict of str to numpy.ndarray
        The same runs' best validation scores.
    results : dict of str to FitResult
        The final runs.
    diverged : dict of str to int
        How many final runs diverged (they keep the score of their best epoch before that).
    metric : str
        ``"accuracy"`` or ``"loss"``.
    split : str
        ``"test"`` or ``"validation"``: where `scores` were measured.
    seeds : int
        Final seeds per contender.
    sweep_seeds : int
    """

    choices: dict[str, RateChoice]
    scores: dict[str, np.ndarray]
    val_scores: dict[str, np.ndarray]
    results: dict[str, Any]
    diverged: dict[str, int]
    metric: str
    split: str
    seeds: int
    sweep_seeds: int

    @property
    def higher_is_better(self) -> bool:
        """True for accuracy, False for a loss."""
        return self.metric == "accuracy"

    def pilot_spread(self) -> float:
        """Return the pooled per-seed standard deviation of the sweep's scores at the chosen rates.

        This is the pilot spread that :func:`seeds_needed` turns into a seed count; diverged
        sweep runs (NaN) are left out.
        """
        groups = [c.chosen_scores[np.isfinite(c.chosen_scores)] for c in self.choices.values()]
        groups = [g for g in groups if g.size >= 2]
        if not groups:
            raise ValueError("the sweep has fewer than 2 finite scores per contender: no spread")
        pooled = sum(float(g.var(ddof=1)) * (g.size - 1) for g in groups)
        return math.sqrt(pooled / sum(g.size - 1 for g in groups))

    def verdicts(
        self,
        pairs: Mapping[str, tuple[str, str]],
        *,
        alpha: float = 0.05,
        words: Sequence[str] | None = None,
    ) -> dict[str, Comparison]:
        """Welch + Holm over the named pairs ``{label: (a, b)}`` of contenders: quote them all.

        The default words say "ahead" when `a` scores better (higher accuracy, or lower loss).
        """
        if not isinstance(pairs, Mapping) or not pairs:
            raise TypeError(f"pairs must be a non-empty mapping, got {_describe(pairs)}")
        samples = {}
        for label, pair in pairs.items():
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise TypeError(f"pairs[{label!r}] must be (a, b), got {_describe(pair)}")
            for name in pair:
                if name not in self.scores:
                    raise ValueError(
                        f"pairs[{label!r}] names {name!r}, not one of {sorted(self.scores)}"
                    )
            a, b = (self.scores[n][np.isfinite(self.scores[n])] for n in pair)
            samples[label] = (a, b)
        if words is None:
            words = ("behind", "a tie", "ahead") if self.higher_is_better else (
                "ahead", "a tie", "behind")  # fmt: skip
        return verdicts(samples, alpha=alpha, words=words)

    def table(self, digits: int = 1) -> str:
        """One HTML table: contender | rate (grid, widened) | seeds | mean ± sd | diverged."""
        what = "accuracy (%)" if self.metric == "accuracy" else "loss"
        rows = []
        for name, choice in self.choices.items():
            s = self.scores[name]
            ok = s[np.isfinite(s)]
            grid = f"{choice.grid[0]:.3g} to {choice.grid[-1]:.3g}, {len(choice.grid)} rates"
            note = f"; +{choice.widened} past an edge" if choice.widened else ""
            note += "; still on the edge" if choice.on_edge else ""
            sd = float(ok.std(ddof=1)) if ok.size > 1 else float("nan")
            rows.append(
                [name, f"{choice.chosen:.3g} ({grid}{note})", str(ok.size),
                 f"{ok.mean():.{digits}f} ± {sd:.{digits}f}", str(self.diverged[name])]
            )  # fmt: skip
        head = ["contender", "rate, chosen on validation", "seeds",
                f"{self.split} {what}, mean ± sd", "diverged"]  # fmt: skip
        return _html_table(head, rows)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f'<table class="eiginit-table"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'
    )


def verdict_table(comparisons: Mapping[str, Comparison], *, unit: str = "points") -> str:
    """One HTML table of a page's comparisons: difference, Welch interval, Holm's p, verdict.

    Parameters
    ----------
    comparisons : mapping of str to Comparison
        From :func:`verdicts` or :meth:`Trial.verdicts`.
    unit : str, default "points"
        The unit of the differences (shown in the header).

    Returns
    -------
    str
        HTML, for ``IPython.display.HTML``.

    Examples
    --------
    >>> calls = verdicts({"a vs b": ([5.0, 5.2, 5.1], [4.0, 4.1, 3.9])})
    >>> html = verdict_table(calls)
    >>> html.count("<tr>"), "ahead" in html
    (2, True)
    """
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise TypeError(
            f"comparisons must be a non-empty mapping of name to Comparison, got "
            f"{_describe(comparisons)}"
        )
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a string, got {_describe(unit)}")
    rows = []
    for name, c in comparisons.items():
        if not isinstance(c, Comparison):
            raise TypeError(f"comparisons[{name!r}] must be a Comparison, got {_describe(c)}")
        w = c.welch
        p = "< 0.001" if c.adjusted_p < 0.001 else f"{c.adjusted_p:.3f}"
        rows.append([name, f"{w.difference:+.2f}", f"[{w.low:+.2f}, {w.high:+.2f}]", p, c.word])
    family = next(iter(comparisons.values())).family
    head = ["comparison (a against b)", f"difference ({unit})", "95 % Welch interval",
            f"Holm-adjusted p ({family} comparisons)", "verdict"]  # fmt: skip
    return _html_table(head, rows)


def run_trial(
    contenders: Sequence[Contender],
    data: Any,
    *,
    grid: Sequence[float] | Mapping[str, Sequence[float]],
    sweep_seeds: int = 2,
    seeds: int = 8,
    seed: int = 0,
    max_widen: int = 2,
    **fit_options: Any,
) -> Trial:
    """Train every contender under one protocol: rate on validation, then fresh seeds.

    For each contender:

    1. **Sweep.** Every rate of its grid with `sweep_seeds` seeds, all in one :func:`eiginit.fit`
       call (seed ``k`` has the same weights and minibatch order at every rate); the rate is
       chosen on the best validation score by :func:`choose_rate`, which widens the grid when
       the choice sits on an edge.
    2. **Final runs.** `seeds` fresh replicas at the chosen rate: weights and minibatch orders
       never used in the sweep, each replica its own. Each is scored at its best-validation
       epoch (early stopping), on the test split if `data` has one.

    Every generator derives from ``np.random.SeedSequence(seed)`` by the contender's name, the
    phase and the replica (weights and minibatch order on separate streams), so contenders are
    independent and a contender's runs do not change when another is added.

    Parameters
    ----------
    contenders : sequence of Contender
        Distinct names.
    data : Dataset or tuple
        With a validation split: an :class:`eiginit.Dataset` or ``(x_train, y_train, x_val,
        y_val[, x_test, y_test])``.
    grid : sequence of float, or mapping of name to sequence
        The learning-rate grid (one for all, or one per contender).
    sweep_seeds, seeds : int
        Seeds per rate in the sweep (>= 1), and fresh seeds at the chosen rate (>= 2).
    seed : int, default 0
    max_widen : int, default 2
    **fit_options
        Passed to :func:`eiginit.fit` (``epochs``, ``batch_size``, ``optimizer``...).

    Returns
    -------
    Trial

    Examples
    --------
    Two initializations of a small MLP, one scaled down tenfold:

    >>> import functools
    >>> from eiginit import MLP, kaiming_normal
    >>> from eiginit.training.engine import MLPModel
    >>> def contender(name, gain):
    ...     def build(rngs):
    ...         init = functools.partial(kaiming_normal, nonlinearity="relu")
    ...         nets = [MLP.create([4, 8, 2], "relu", init, rng=g) for g in rngs]
    ...         for net in nets:
    ...             for w in net.weights:
    ...                 w *= gain
    ...         return MLPModel.from_networks(nets)
    ...     return Contender(name, build)
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((360, 4)); y = (x[:, 0] > 0).astype(int)
    >>> data = (x[:200], y[:200], x[200:280], y[200:280], x[280:], y[280:])
    >>> trial = run_trial([contender("Kaiming", 1.0), contender("small", 0.1)], data,
    ...                   grid=[1e-2, 1e-1], seeds=4, epochs=3)
    >>> trial.scores["Kaiming"].shape, trial.metric, trial.split
    ((4,), 'accuracy', 'test')
    """
    from eiginit.training.engine import fit

    if isinstance(contenders, Contender) or not isinstance(contenders, Sequence):
        raise TypeError(f"contenders must be a sequence of Contender, got {_describe(contenders)}")
    if not contenders:
        raise ValueError("contenders must hold at least one Contender, got none")
    for c in contenders:
        if not isinstance(c, Contender):
            raise TypeError(f"each of contenders must be a Contender, got {_describe(c)}")
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise ValueError(f"contenders must have distinct names, got {names}")
    x_tr, y_tr, x_val, y_val, x_te, y_te = _split(data)
    k = check_int(sweep_seeds, "sweep_seeds", minimum=1)
    n = check_int(seeds, "seeds", minimum=2)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be an integer >= 0, got {_describe(seed)}")
    if isinstance(grid, Mapping):
        missing = [nm for nm in names if nm not in grid]
        if missing:
            raise ValueError(f"grid has no rates for {missing}")
        grids = {nm: grid[nm] for nm in names}
    else:
        grids = dict.fromkeys(names, grid)
    if "lr" in fit_options or "seeds" in fit_options:
        raise TypeError("run_trial sets lr and seeds itself; pass grid, sweep_seeds and seeds")
    split = "test" if x_te is not None else "validation"

    choices, scores, val_scores, results, diverged = {}, {}, {}, {}, {}
    metric = ""
    for c in contenders:
        options = {**fit_options, **c.fit_options}
        metric = options.get("metric") or (
            "accuracy" if np.asarray(y_tr).dtype.kind in "iu" else "loss"
        )

        def evaluate(rates: list[float], c: Contender = c, options: dict = options) -> np.ndarray:
            rngs = [
                np.random.default_rng(_stream(seed, c.name, 0, j, 0))
                for _ in rates
                for j in range(k)
            ]
            model, params = c.build(rngs)
            orders = [_order_seed(seed, c.name, 0, j) for j in range(k)] * len(rates)
            result = fit(model, params, (x_tr, y_tr, x_val, y_val),
                         lr=np.repeat(rates, k), seeds=orders, **options)  # fmt: skip
            best = result.best_value.reshape(len(rates), k)
            return 100.0 * best if result.metric == "accuracy" else best

        higher = metric == "accuracy"
        choice = choose_rate(evaluate, grids[c.name], higher_is_better=higher, max_widen=max_widen)
        rngs = [np.random.default_rng(_stream(seed, c.name, 1, r, 0)) for r in range(n)]
        model, params = c.build(rngs)
        orders = [_order_seed(seed, c.name, 1, r) for r in range(n)]
        result = fit(model, params, (x_tr, y_tr, x_val, y_val), lr=choice.chosen,
                     seeds=orders, **options)  # fmt: skip
        metric = result.metric
        best = result.best_value
        val_scores[c.name] = 100.0 * best if metric == "accuracy" else best
        if x_te is not None:
            scores[c.name] = _score(model, result.params, x_te, y_te, metric)
        else:
            scores[c.name] = val_scores[c.name].copy()
        choices[c.name], results[c.name] = choice, result
        diverged[c.name] = int(result.diverged.sum())
    return Trial(choices, scores, val_scores, results, diverged, metric, split, n, k)
