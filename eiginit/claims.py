"""Sentences that answer to their numbers: a chapter's words about a computed result, checked.

A chapter that says a computed quantity *rises*, *falls*, *stays below* a threshold, *leads* or
*ties* must not keep saying so after the numbers change. Two tools make the build enforce it:

- :func:`claim` sits on the line beside the sentence it guards. It takes the sentence, as the
  chapter prints it, and the condition that makes it true; when the condition fails it raises
  :class:`ClaimError` quoting the sentence and the numbers, so the cell fails and, with it, the
  strict build::

      claim("the loss falls below its initial value", loss[-1] < loss[0],
            first=loss[0], last=loss[-1])

- :func:`compare` computes the word itself, for prose that should follow the data whichever way
  it goes: ``glue("ch_word", compare(a, b, spread=se))`` and then
  ``Kaiming ends {glue:text}`ch_word` orthogonal``. A difference within ``spread`` is a tie.

Both are plain Python: a chapter downloaded and run at home raises the same error.
"""

from __future__ import annotations

import math
import numbers as _numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ClaimError", "claim", "compare"]


class ClaimError(AssertionError):
    """A sentence of the book is contradicted by the numbers its chapter computed."""


def _describe(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return repr(value)


def claim(sentence: str, holds: Any, /, **numbers: Any) -> str:
    """Stop the build when `sentence` is contradicted by the chapter's own numbers.

    Parameters
    ----------
    sentence : str
        The sentence (or the clause) as the chapter states it, quoted in the error.
    holds : bool
        The condition under which the sentence is true, computed from the data. A numpy bool
        or a 0-d boolean array is accepted; anything else (an array of several values, None,
        a number) is a TypeError, so ``claim(..., a < b)`` with arrays must say ``.all()`` or
        ``.any()``.
    **numbers
        The quantities the condition reads, printed in the error beside the sentence.

    Returns
    -------
    str
        `sentence`, so a claim can also be glued.

    Raises
    ------
    ClaimError
        If `holds` is false; the message quotes the sentence and the numbers.
    TypeError
        If `sentence` is not a non-empty string or `holds` is not a single boolean.

    Examples
    --------
    >>> claim("the norm stays below 2", 1.7 < 2, norm=1.7)
    'the norm stays below 2'
    >>> claim("the norm stays below 2", 2.3 < 2, norm=2.3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    eiginit.claims.ClaimError: the sentence "the norm stays below 2" ... (norm = 2.3)
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise TypeError(f"sentence must be a non-empty string, got {sentence!r}")
    if isinstance(holds, np.ndarray) and holds.shape == () and holds.dtype == bool:
        holds = bool(holds)
    if not isinstance(holds, bool | np.bool_):
        raise TypeError(
            f"holds must be one boolean (the condition that makes the sentence true), got "
            f"{type(holds).__name__} {holds!r}; reduce arrays with .all() or .any()"
        )
    if not holds:
        shown = ", ".join(f"{k} = {_describe(v)}" for k, v in numbers.items())
        detail = f" ({shown})" if shown else ""
        raise ClaimError(f'the sentence "{sentence}" is contradicted by the data{detail}')
    return sentence


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, _numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def compare(
    a: float,
    b: float,
    *,
    spread: float = 0.0,
    words: Sequence[str] = ("below", "level with", "above"),
) -> str:
    """Return the word for `a` against `b`: below, level with (a tie), or above.

    ``a`` is level with ``b`` when ``|a - b| <= spread``; pass the seed-to-seed spread of the
    difference (for example a 95 % interval's half-width) so that a difference inside it is
    called a tie.

    Parameters
    ----------
    a, b : float
        The two numbers, finite.
    spread : float, default 0.0
        The largest difference that is still a tie, finite and >= 0.
    words : sequence of three str, default ("below", "level with", "above")
        The words for ``a < b``, a tie, and ``a > b``, in that order.

    Returns
    -------
    str
        One of `words`.

    Raises
    ------
    TypeError
        If a number is not real or `words` is not three strings.
    ValueError
        If a number is not finite or `spread` is negative.

    Examples
    --------
    >>> compare(0.72, 0.81, spread=0.04)
    'below'
    >>> compare(0.80, 0.81, spread=0.04, words=("trails", "ties with", "leads"))
    'ties with'
    """
    x, y, s = _real("a", a), _real("b", b), _real("spread", spread)
    if s < 0:
        raise ValueError(f"spread must be >= 0, got {s}")
    if (
        isinstance(words, str)
        or not isinstance(words, Sequence)
        or len(words) != 3
        or not all(isinstance(w, str) for w in words)
    ):
        raise TypeError(f"words must be three strings (below, tie, above), got {words!r}")
    if abs(x - y) <= s:
        return words[1]
    return words[0] if x < y else words[2]
