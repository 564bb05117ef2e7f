r"""Gated recurrent networks, LSTM and GRU, as models of the training engine.

The cells follow PyTorch's equations and parameter layout (``nn.LSTM``, ``nn.GRU``), with a
leading replica axis on every array (:mod:`eiginit.training.engine`). For the LSTM, with gates
stacked
in the order input, forget, cell, output (:math:`G = 4` blocks of :math:`H` rows):

.. math::

    a_t &= W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh} = (a^i, a^f, a^g, a^o), \\
    c_t &= \sigma(a^f) \odot c_{t-1} + \sigma(a^i) \odot \tanh(a^g), \qquad
    h_t = \sigma(a^o) \odot \tanh(c_t);

for the GRU (reset, update, new; :math:`G = 3`):

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \quad
    z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}), \\
    n_t &= \tanh\big(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})\big), \qquad
    h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1},

from :math:`h_0 = c_0 = 0`, read out linearly from the last state, :math:`\hat y = V h_T + c`,
with the mean squared error (the adding problem, :func:`eiginit.adding_problem`). Gradients are
backpropagation through time, written out (Hochreiter & Schmidhuber 1997; Cho et al. 2014 for
the GRU, in PyTorch's form with the reset gate inside the product).

:func:`gated_init` draws the three initializations that chapter "Recurrent networks" compares:

- ``"pytorch"``: every weight and bias from :math:`U(\pm 1/\sqrt{H})`, the readout as
  ``nn.Linear`` (:math:`U(\pm 1/\sqrt{H})` too);
- ``"keras"``: Keras's defaults, a Glorot-uniform input kernel over all gates at once, an
  orthogonal recurrent kernel over all gates at once (so each gate's block is a quarter, or a
  third, of a semi-orthogonal matrix), zero biases with the LSTM's forget-gate bias 1
  (``unit_forget_bias``), a Glorot-uniform readout;
- ``"chrono"`` (LSTM only): Keras's weights with Tallec & Ollivier's (2018) chrono biases,
  :math:`b_f \sim \log U(1, T_{\max} - 1)` and :math:`b_i = -b_f`, so that the forget gate's
  time constants spread over the dependencies' range up to :math:`T_{\max}`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    _describe,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_replica_params,
    check_rng,
)

__all__ = ["GATED_CELLS", "GATED_SCHEMES", "GatedRNNModel", "gated_init"]

#: The cells: their gate count.
GATED_CELLS = {"lstm": 4, "gru": 3}
#: The initializations :func:`gated_init` draws.
GATED_SCHEMES = ("pytorch", "keras", "chrono")


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # exp of -|a| only: no overflow at any finite a
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


def _check_cell(cell: Any) -> str:
    if not isinstance(cell, str) or cell.lower() not in GATED_CELLS:
        raise ValueError(f"cell must be one of {sorted(GATED_CELLS)}, got {_describe(cell)}")
    return cell.lower()


@dataclass(frozen=True)
class GatedRNNModel:
    r"""Stacked LSTM or GRU networks with a linear readout and the mean squared error.

    Parameters are ``[W_ih, W_hh, b_ih, b_hh, W_out, b_out]`` with shapes ``(R, G H, d)``,
    ``(R, G H, H)``, ``(R, G H)``, ``(R, G H)``, ``(R, o, H)``, ``(R, o)`` (PyTorch's layout
    and gate order, replica axis first). Inputs are sequences ``(n, T, d)``, targets ``(n, o)``.

    Attributes
    ----------
    cell : str
        ``"lstm"`` (the default) or ``"gru"``.
    """

    cell: str = "lstm"

    def __post_init__(self) -> None:
        object.__setattr__(self, "cell", _check_cell(self.cell))

    # -- shapes ----------------------------------------------------------------------------
    def _check(self, params: Sequence[np.ndarray], x: np.ndarray, shared: bool) -> None:
        if not isinstance(params, Sequence) or len(params) != 6:
            raise TypeError(
                f"params must be [W_ih, W_hh, b_ih, b_hh, W_out, b_out], got {_describe(params)}"
            )
        W_ih, W_hh = check_replica_params(params)[:2]
        G = GATED_CELLS[self.cell]
        if W_ih.ndim != 3 or W_hh.ndim != 3:
            raise ValueError(
                f"params[0] and params[1] must be (R, {G} H, d) and (R, {G} H, H), got shapes "
                f"{W_ih.shape} and {W_hh.shape}"
            )
        R, GH, d = W_ih.shape
        H = W_hh.shape[2]
        o = params[4].shape[1] if params[4].ndim == 3 else -1
        want = [(R, G * H, d), (R, G * H, H), (R, G * H), (R, G * H), (R, o, H), (R, o)]
        got = [tuple(p.shape) for p in params]
        if GH != G * H or o < 1 or got != want:
            raise ValueError(
                f"params must hold a {self.cell.upper()} with {G} gates, shapes (R, {G} H, d), "
                f"(R, {G} H, H), (R, {G} H), (R, {G} H), (R, o, H), (R, o), got {got}"
            )
        want = 3 if shared else 4
        if x.ndim != want or x.shape[-1] != d:
            raise ValueError(
                f"x must be sequences of shape {'(n, T, d)' if shared else '(R, B, T, d)'} "
                f"with d = {d}, got shape {x.shape}"
            )

    # -- forward ---------------------------------------------------------------------------
    def _forward(
        self, params: Sequence[np.ndarray], x: np.ndarray, keep: bool
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, ...]]]:
        """Run the cell over T steps; x is (R, B, T, d). Return h_T and the per-step caches."""
        W_ih, W_hh, b_ih, b_hh = params[:4]
        R, B, T, d = x.shape
        H = W_hh.shape[2]
        dt = W_ih.dtype
        proj = np.matmul(x.reshape(R, B * T, d), W_ih.transpose(0, 2, 1)).reshape(R, B, T, -1)
        h = np.zeros((R, B, H), dtype=dt)
        caches: list[tuple[np.ndarray, ...]] = []
        if self.cell == "lstm":
            proj += (b_ih + b_hh)[:, None, None, :]
            c = np.zeros((R, B, H), dtype=dt)
            for t in range(T):
                a = proj[:, :, t] + np.matmul(h, W_hh.transpose(0, 2, 1))
                i, f, o = (_sigmoid(a[..., k * H : (k + 1) * H]) for k in (0, 1, 3))
                g = np.tanh(a[..., 2 * H : 3 * H])
                c_prev, h_prev = c, h
                c = f * c + i * g
                tc = np.tanh(c)
                h = o * tc
                if keep:
                    caches.append((h_prev, c_prev, i, f, g, o, tc))
        else:
            proj += b_ih[:, None, None, :]
            for t in range(T):
                gh = np.matmul(h, W_hh.transpose(0, 2, 1)) + b_hh[:, None, :]
                gi = proj[:, :, t]
                r = _sigmoid(gi[..., :H] + gh[..., :H])
                z = _sigmoid(gi[..., H : 2 * H] + gh[..., H : 2 * H])
                n = np.tanh(gi[..., 2 * H :] + r * gh[..., 2 * H :])
                h_prev = h
                h = (1 - z) * n + z * h
                if keep:
                    caches.append((h_prev, r, z, n, gh[..., 2 * H :]))
        return h, caches

    def _readout(self, params: Sequence[np.ndarray], h: np.ndarray) -> np.ndarray:
        return np.matmul(h, params[4].transpose(0, 2, 1)) + params[5][:, None, :]

    # -- the engine's protocol -----------------------------------------------------------------
    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each replica's mean squared error on its minibatch and the gradients (BPTT)."""
        x = np.asarray(x)
        self._check(params, x, shared=False)
        W_ih, W_hh, _, _, W_out, _ = params
        R, B, T, d = x.shape
        H = W_hh.shape[2]
        h, caches = self._forward(params, x, keep=True)
        out = self._readout(params, h)
        y = np.asarray(y)
        if y.shape != out.shape:
            raise ValueError(
                f"y must hold one target row per sequence, shape {out.shape} (R, batch, outputs), "
                f"got shape {y.shape}"
            )
        error = out - y.astype(out.dtype)
        loss = np.mean(error * error, axis=(1, 2), dtype=np.float64)
        dout = (2.0 / (error.shape[1] * error.shape[2])) * error
        g_out = np.einsum("rbo,rbh->roh", dout, h)
        gb_out = dout.sum(axis=1)
        dh = np.matmul(dout, W_out)
        dproj = np.empty((R, B, T, W_ih.shape[1]), dtype=W_ih.dtype)
        g_hh = np.zeros_like(W_hh)
        if self.cell == "lstm":
            dc = np.zeros_like(dh)
            for t in range(T - 1, -1, -1):
                h_prev, c_prev, i, f, g, o, tc = caches[t]
                do = dh * tc
                dc = dc + dh * o * (1 - tc * tc)
                da = dproj[:, :, t]
                da[..., :H] = dc * g * i * (1 - i)
                da[..., H : 2 * H] = dc * c_prev * f * (1 - f)
                da[..., 2 * H : 3 * H] = dc * i * (1 - g * g)
                da[..., 3 * H :] = do * o * (1 - o)
                g_hh += np.matmul(da.transpose(0, 2, 1), h_prev)
                dh = np.matmul(da, W_hh)
                dc = dc * f
            gb = dproj.sum(axis=(1, 2))
            gb_ih, gb_hh = gb, gb.copy()
        else:
            gb_hh = np.zeros((R, W_hh.shape[1]), dtype=W_hh.dtype)
            for t in range(T - 1, -1, -1):
                h_prev, r, z, n, gh_n = caches[t]
                dn = dh * (1 - z)
                dan = dn * (1 - n * n)
                dar = dan * gh_n * r * (1 - r)
                daz = dh * (h_prev - n) * z * (1 - z)
                di = dproj[:, :, t]
                di[..., :H], di[..., H : 2 * H], di[..., 2 * H :] = dar, daz, dan
                dgh = np.concatenate([dar, daz, dan * r], axis=-1)
                g_hh += np.matmul(dgh.transpose(0, 2, 1), h_prev)
                gb_hh += dgh.sum(axis=1)
                dh = dh * z + np.matmul(dgh, W_hh)
            gb_ih = dproj.sum(axis=(1, 2))
        g_ih = np.matmul(dproj.reshape(R, B * T, -1).transpose(0, 2, 1), x.reshape(R, B * T, d))
        return loss, [g_ih, g_hh, gb_ih, gb_hh, g_out, gb_out]

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's readout on shared sequences x (n, T, d), shape (R, n, o)."""
        x = np.asarray(x)
        self._check(params, x, shared=True)
        R = params[0].shape[0]
        outs = []
        for s in range(0, x.shape[0], 256):
            chunk = np.broadcast_to(x[s : s + 256], (R, *x[s : s + 256].shape))
            h, _ = self._forward(params, chunk, keep=False)
            outs.append(self._readout(params, h))
        return np.concatenate(outs, axis=1)

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean squared error against shared targets."""
        error = outputs - np.asarray(y, dtype=outputs.dtype)
        return np.mean(error * error, axis=tuple(range(1, outputs.ndim)), dtype=np.float64)


def _semi_orthogonal(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a (rows, cols) matrix with orthonormal columns (rows >= cols), Haar-distributed."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


def gated_init(
    cell: str,
    sizes: tuple[int, int, int],
    scheme: str,
    *,
    rngs: Sequence[np.random.Generator],
    t_max: float | None = None,
    dtype: Any = np.float32,
) -> tuple[GatedRNNModel, list[np.ndarray]]:
    r"""Draw one LSTM or GRU per generator with PyTorch's, Keras's or the chrono initialization.

    Parameters
    ----------
    cell : {"lstm", "gru"}
    sizes : (int, int, int)
        Input width d, hidden width H and outputs o.
    scheme : {"pytorch", "keras", "chrono"}
        See the module's docstring for each rule; ``"chrono"`` is defined for the LSTM.
    rngs : sequence of numpy.random.Generator
        One per replica; replica r is drawn from ``rngs[r]`` alone.
    t_max : float, optional
        The longest dependency for ``"chrono"`` (> 2), for the adding problem its length T.
    dtype : numpy dtype, default float32

    Returns
    -------
    model : GatedRNNModel
    params : list of numpy.ndarray

    Examples
    --------
    >>> model, p = gated_init("lstm", (2, 8, 1), "keras", rngs=[np.random.default_rng(0)])
    >>> [a.shape for a in p]
    [(1, 32, 2), (1, 32, 8), (1, 32), (1, 32), (1, 1, 8), (1, 1)]
    >>> p[2][0, 8:16].tolist() == [1.0] * 8  # Keras's unit_forget_bias
    True
    """
    cell = _check_cell(cell)
    if not isinstance(scheme, str) or scheme not in GATED_SCHEMES:
        raise ValueError(f"scheme must be one of {GATED_SCHEMES}, got {_describe(scheme)}")
    if not isinstance(sizes, Sequence) or len(sizes) != 3:
        raise TypeError(f"sizes must be (input, hidden, outputs), got {_describe(sizes)}")
    d, H, o = (check_int(s, f"sizes[{k}]", minimum=1) for k, s in enumerate(sizes))
    if isinstance(rngs, np.random.Generator) or not isinstance(rngs, Sequence) or not rngs:
        raise TypeError(f"rngs must be a non-empty list of Generators, got {_describe(rngs)}")
    gens = [check_rng(g) for g in rngs]
    dtype = check_float_dtype(dtype)
    if scheme == "chrono":
        if cell != "lstm":
            raise ValueError("scheme 'chrono' is defined here for the LSTM's forget gate only")
        if t_max is None:
            raise ValueError("scheme 'chrono' needs t_max, the longest dependency (> 2)")
        t_max = check_positive_float(t_max, "t_max")
        if t_max <= 2:
            raise ValueError(f"t_max must be > 2, got {t_max}")
    G = GATED_CELLS[cell]
    arrays: list[list[np.ndarray]] = [[] for _ in range(6)]
    for rng in gens:
        if scheme == "pytorch":
            k = 1 / math.sqrt(H)
            parts = [rng.uniform(-k, k, shape) for shape in
                     ((G * H, d), (G * H, H), (G * H,), (G * H,), (o, H), (o,))]  # fmt: skip
        else:
            lim = math.sqrt(6 / (d + G * H))
            w_ih = rng.uniform(-lim, lim, (G * H, d))
            w_hh = _semi_orthogonal(G * H, H, rng)
            lim_out = math.sqrt(6 / (H + o))
            w_out = rng.uniform(-lim_out, lim_out, (o, H))
            b_ih, b_hh = np.zeros(G * H), np.zeros(G * H)
            if cell == "lstm" and scheme == "keras":
                b_ih[H : 2 * H] = 1.0
            if scheme == "chrono":
                b_f = np.log(rng.uniform(1.0, t_max - 1.0, H))
                b_ih[H : 2 * H], b_ih[:H] = b_f, -b_f
            parts = [w_ih, w_hh, b_ih, b_hh, w_out, np.zeros(o)]
        for store, part in zip(arrays, parts, strict=True):
            store.append(part)
    return GatedRNNModel(cell), [np.stack(a).astype(dtype) for a in arrays]
