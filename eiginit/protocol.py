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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, as_real_array, check_positive_float

__all__ = ["Comparison", "Welch", "holm", "student_t_quantile", "verdicts", "welch"]


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


# --- Provisional (branch h8): the lead's protocol on main replaces this block at the merge. -----
# Written to the announced API of `choose_rate` and `seeds_needed` so that the training study can
# run before the merge; `eiginit.study.check_stored` replays the stored sweep through whichever
# `choose_rate` is installed, so a difference between the two implementations fails the build.


@dataclass(frozen=True, eq=False)
class RateChoice:
    """The learning rate :func:`choose_rate` picked, and everything it evaluated.

    Attributes
    ----------
    grid : tuple of float
        The rates evaluated, in increasing order (the given grid and any widening).
    scores : numpy.ndarray, shape (len(grid), k)
        The validation scores of each rate (NaN: diverged).
    chosen : float
    widened : int
        How many rates were added beyond an edge.
    on_edge : bool
        Whether the choice still sits on an edge of the (widened) grid.
    higher_is_better : bool
    """

    grid: tuple[float, ...]
    scores: np.ndarray
    chosen: float
    widened: int
    on_edge: bool
    higher_is_better: bool


def _rate_means(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    worst = -np.inf if higher_is_better else np.inf
    means = np.where(np.isnan(scores), worst, scores).mean(axis=1)
    return means if higher_is_better else -means


def choose_rate(
    evaluate: Any, grid: Sequence[float], *, higher_is_better: bool = True, max_widen: int = 2
) -> RateChoice:
    """Choose the rate with the best mean validation score, widening the grid at an edge.

    ``evaluate(rates) -> (len(rates), k)`` scores (NaN for a diverged run, counted as the worst).
    When the best mean sits on the grid's first or last rate, one log-step (the ratio of the two
    rates at that edge) beyond it is evaluated, up to `max_widen` times.

    Examples
    --------
    >>> choice = choose_rate(lambda rates: np.array([[-abs(np.log10(r) + 2)] * 2 for r in rates]),
    ...                      [1e-4, 1e-3])
    >>> round(choice.chosen, 6), choice.widened, choice.on_edge
    (0.01, 2, False)
    """
    rates = sorted(check_positive_float(r, "each rate of grid") for r in grid)
    if len(rates) < 2 or len(set(rates)) != len(rates):
        raise ValueError(f"grid must hold at least two distinct rates, got {list(grid)}")
    scores = [np.asarray(s, float) for s in np.asarray(evaluate(list(rates)), float)]
    widened = 0
    while True:
        means = _rate_means(np.stack(scores), higher_is_better)
        best = int(np.argmax(means))
        edge = best in (0, len(rates) - 1)
        if not edge or widened >= max_widen:
            break
        new = rates[0] ** 2 / rates[1] if best == 0 else rates[-1] ** 2 / rates[-2]
        row = np.asarray(evaluate([new]), float)[0]
        if best == 0:
            rates.insert(0, new)
            scores.insert(0, row)
        else:
            rates.append(new)
            scores.append(row)
        widened += 1
    return RateChoice(tuple(rates), np.stack(scores), rates[best], widened, edge,
                      bool(higher_is_better))  # fmt: skip


def _normal_quantile(p: float) -> float:
    return student_t_quantile(p, 1e9)


def seeds_needed(
    spread: float,
    difference: float,
    *,
    comparisons: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    r"""Seeds per contender to separate a true `difference` at Holm's strictest level.

    The smallest :math:`n \ge 3` with :math:`n \ge 2 (t_{1-a/2,\nu} + t_{\mathrm{power},\nu})^2
    \sigma^2/\Delta^2`, :math:`a = \alpha/m`, :math:`\nu = 2n - 2` (two equal groups, Welch's
    degrees of freedom at equal spreads).

    Examples
    --------
    >>> seeds_needed(1.0, 1.0)
    17
    """
    s = check_positive_float(spread, "spread")
    d = check_positive_float(difference, "difference")
    a = check_positive_float(alpha, "alpha") / max(1, int(comparisons))
    n = 3
    while n < 100000:
        df = 2 * n - 2
        need = 2 * (student_t_quantile(1 - a / 2, df) + student_t_quantile(power, df)) ** 2
        if n >= need * (s / d) ** 2:
            return n
        n += 1
    return n


def verdict_table(comparisons: Mapping[str, Comparison], unit: str = "points") -> str:
    """Return an HTML table of named comparisons: difference, Welch interval, Holm p, verdict.

    Examples
    --------
    >>> html = verdict_table(verdicts({"a vs b": ([5.0, 5.2, 5.1], [4.0, 4.1, 3.9])}))
    >>> "<td>ahead</td>" in html
    True
    """
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise TypeError(
            f"comparisons must be a non-empty mapping of name to Comparison, got "
            f"{_describe(comparisons)}"
        )
    rows = []
    for name, c in comparisons.items():
        if not isinstance(c, Comparison):
            raise TypeError(f"comparisons[{name!r}] must be a Comparison, got {_describe(c)}")
        w = c.welch
        rows.append(
            f"<tr><td>{name}</td><td>{w.difference:+.1f} {unit}</td>"
            f"<td>[{w.low:+.1f}, {w.high:+.1f}]</td><td>{c.adjusted_p:.3f}</td>"
            f"<td>{c.word}</td></tr>"
        )
    family = next(iter(comparisons.values())).family
    return (
        f"<table><caption>{family} comparisons, Welch's 95 % interval for each difference and "
        f"Holm's adjusted p-value across them</caption><tr><th>comparison</th><th>difference</th>"
        f"<th>95 % Welch interval</th><th>Holm-adjusted p</th><th>verdict</th></tr>"
        f"{''.join(rows)}</table>"
    )
