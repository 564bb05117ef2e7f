r"""A small Pre-LN transformer as a model of the engine, its initializations and a recall task.

The trained network of chapter "Attention" (Part V). Tokens :math:`t_1, \dots, t_T` from a
vocabulary of :math:`V` symbols become rows :math:`h_i = E_{t_i} + P_i` (a token embedding
:math:`E \in \mathbb{R}^{V \times d}` and a learned position embedding
:math:`P \in \mathbb{R}^{T \times d}`), and every block applies, with layer normalization first
(Pre-LN, as GPT-2; Radford et al. 2019, section 2.3),

.. math::

    h \leftarrow h + \operatorname{MHA}(\operatorname{LN}_1(h)), \qquad
    h \leftarrow h + W_2\, \phi(W_1 \operatorname{LN}_2(h) + b_1) + b_2,

where multi-head attention (Vaswani et al. 2017, section 3.2.2) projects
:math:`[Q, K, V] = a W_{QKV}^\top + b_{QKV}`, splits the :math:`d` columns of each into
:math:`H` heads of :math:`d_k = d/H`, mixes the tokens of each head with
:math:`\operatorname{softmax}(Q_h K_h^\top / \sqrt{d_k})` (optionally causal: token :math:`i`
sees tokens :math:`j \le i`), concatenates the heads and projects with :math:`W_O`. A final
layer normalization and a linear readout turn the *last* token into class logits, trained with
the softmax cross-entropy. Weights have PyTorch's shape ``(fan_out, fan_in)``;
:math:`W_{QKV}` is ``nn.MultiheadAttention``'s ``in_proj_weight`` ``(3d, d)``.

:class:`TransformerModel` is a :class:`eiginit.training.engine.Model`: every parameter array has a
leading replica axis, and :func:`eiginit.fit` trains R transformers at once.
:func:`init_transformer` draws the initializations people use (PyTorch's module defaults,
GPT-2's, GPT-NeoX's), one generator per replica, and :func:`associative_recall` generates the
task: key-value pairs followed by a query key, whose value must be recalled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, check_float_dtype, check_int, check_rng
from eiginit.models.losses import replica_cross_entropy, shared_cross_entropy

__all__ = [
    "TRANSFORMER_INITS",
    "TransformerModel",
    "associative_recall",
    "framework_attention_defaults",
    "init_transformer",
]

#: The initializations :func:`init_transformer` draws.
TRANSFORMER_INITS = ("pytorch", "gpt2", "small_init")

_GELU_C = math.sqrt(2.0 / math.pi)
_LN_EPS = 1e-5
_PER_LAYER = 12


def _row_mean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis, keepdims, as a matrix-vector product (faster for short rows)."""
    return (x @ np.full(x.shape[-1], 1.0 / x.shape[-1], dtype=x.dtype))[..., None]


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """LayerNorm over the last axis with gain g and bias b of shape (R, d), broadcast."""
    centred = x - _row_mean(x)
    inv = 1.0 / np.sqrt(_row_mean(centred * centred) + _LN_EPS)
    xhat = centred * inv
    shape = (g.shape[0],) + (1,) * (x.ndim - 2) + (g.shape[1],)
    return xhat * g.reshape(shape) + b.reshape(shape), (xhat, inv, g.reshape(shape))


def _layer_norm_backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Return dx, dg (R, d), db (R, d) of LayerNorm."""
    xhat, inv, g = cache
    R, d = dy.shape[0], dy.shape[-1]
    dg = np.sum((dy * xhat).reshape(R, -1, d), axis=1)
    db = np.sum(dy.reshape(R, -1, d), axis=1)
    dxhat = dy * g
    dx = inv * (dxhat - _row_mean(dxhat) - xhat * _row_mean(dxhat * xhat))
    return dx, dg, db


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return x @ w^T + b for x (R, ..., in), w (R, out, in), b (R, out)."""
    R = w.shape[0]
    flat = x.reshape(R, -1, x.shape[-1])
    out = np.matmul(flat, np.ascontiguousarray(np.swapaxes(w, 1, 2)))
    out += b[:, None, :]
    return out.reshape(*x.shape[:-1], w.shape[1])


def _linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return dx, dw (R, out, in), db (R, out) of y = x w^T + b."""
    R = w.shape[0]
    dflat = dy.reshape(R, -1, dy.shape[-1])
    xflat = x.reshape(R, -1, x.shape[-1])
    dw = np.matmul(np.swapaxes(dflat, 1, 2), xflat)
    db = dflat.sum(axis=1)
    dx = np.matmul(dflat, w).reshape(x.shape)
    return dx, dw, db


@dataclass(frozen=True)
class TransformerModel:
    r"""R stacked Pre-LN transformers that classify a sequence from its last token.

    Parameters are, each with the replica axis first: ``embed`` (R, V, d), ``position``
    (R, T, d); per block ``ln1_g``, ``ln1_b`` (R, d), ``w_qkv`` (R, 3d, d), ``b_qkv`` (R, 3d),
    ``w_o`` (R, d, d), ``b_o`` (R, d), ``ln2_g``, ``ln2_b`` (R, d), ``w_1`` (R, f, d), ``b_1``
    (R, f), ``w_2`` (R, d, f), ``b_2`` (R, d); then ``lnf_g``, ``lnf_b`` (R, d), ``w_out``
    (R, C, d), ``b_out`` (R, C) (:attr:`parameter_names`). Inputs are token ids, ``(n, T)``
    (:func:`eiginit.fit` passes them as floats; they must be whole numbers in ``0 .. V-1``).

    Attributes
    ----------
    vocab : int
        V, the number of token symbols.
    length : int
        T, the sequence length.
    d_model : int
        d, the width of the residual stream.
    heads : int
        H, which must divide d; each head has :math:`d_k = d/H`.
    layers : int
        The number of blocks L.
    d_ff : int
        f, the width of the MLP.
    classes : int
        C, the number of outputs.
    causal : bool, default False
        Mask attention so that token i sees only tokens j <= i.
    activation : str, default "relu"
        The MLP's nonlinearity; "gelu" is the tanh form of GPT-2's code,
        :math:`\tfrac12 u (1 + \tanh(\sqrt{2/\pi}(u + 0.044715 u^3)))`.

    Examples
    --------
    >>> model = TransformerModel(vocab=6, length=5, d_model=8, heads=2, layers=1, d_ff=16,
    ...                          classes=3)
    >>> params = init_transformer(model, "gpt2", [np.random.default_rng(s) for s in (0, 1)])
    >>> model.predict(params, np.zeros((4, 5))).shape
    (2, 4, 3)
    """

    vocab: int
    length: int
    d_model: int
    heads: int
    layers: int
    d_ff: int
    classes: int
    causal: bool = False
    activation: str = "relu"

    def __post_init__(self) -> None:
        for name, minimum in (("vocab", 2), ("length", 1), ("d_model", 1), ("heads", 1),
                              ("layers", 1), ("d_ff", 1), ("classes", 2)):  # fmt: skip
            check_int(getattr(self, name), name, minimum=minimum)
        if self.d_model % self.heads:
            raise ValueError(
                f"heads must divide d_model, got heads = {self.heads} and d_model = {self.d_model}"
            )
        if not isinstance(self.causal, bool):
            raise TypeError(f"causal must be True or False, got {_describe(self.causal)}")
        if self.activation not in ("relu", "gelu"):
            raise ValueError(
                f"activation must be 'relu' or 'gelu', got {_describe(self.activation)}"
            )

    # ------------------------------------------------------------------ layout
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The name of every parameter array, in order."""
        block = ("ln1_g", "ln1_b", "w_qkv", "b_qkv", "w_o", "b_o",
                 "ln2_g", "ln2_b", "w_1", "b_1", "w_2", "b_2")  # fmt: skip
        names = ["embed", "position"]
        for layer in range(self.layers):
            names += [f"{n}.{layer}" for n in block]
        return (*names, "lnf_g", "lnf_b", "w_out", "b_out")

    @property
    def parameter_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of every parameter array without the replica axis, in order."""
        d, f = self.d_model, self.d_ff
        block = [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (f, d), (f,),
                 (d, f), (d,)]  # fmt: skip
        shapes = [(self.vocab, d), (self.length, d)] + block * self.layers
        return (*shapes, (d,), (d,), (self.classes, d), (self.classes,))

    def _check_params(self, params: Sequence[np.ndarray]) -> int:
        shapes = self.parameter_shapes
        if isinstance(params, np.ndarray) or not isinstance(params, Sequence):
            raise TypeError(
                f"params must be a list of {len(shapes)} arrays, got {_describe(params)}"
            )
        if len(params) != len(shapes):
            raise ValueError(f"params must hold {len(shapes)} arrays, got {len(params)}")
        R = np.shape(params[0])[0] if np.ndim(params[0]) else 0
        for name, p, shape in zip(self.parameter_names, params, shapes, strict=True):
            if not isinstance(p, np.ndarray) or p.shape != (R, *shape):
                raise ValueError(
                    f"params[{name!r}] must have shape {(R, *shape)} (replicas first), got "
                    f"{_describe(p)}"
                )
        return R

    def _tokens(self, x: Any, name: str, ndim: int) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "iuf" or x.ndim != ndim or x.shape[-1] != self.length:
            raise ValueError(
                f"{name} must be token ids of shape {'(R, B, T)' if ndim == 3 else '(n, T)'} "
                f"with T = {self.length}, got {_describe(x)}"
            )
        tokens = x.astype(np.intp)
        if x.size and (np.any(tokens != x) or tokens.min() < 0 or tokens.max() >= self.vocab):
            raise ValueError(
                f"{name} must hold whole numbers in 0..{self.vocab - 1} (token ids), got values "
                f"from {float(x.min())} to {float(x.max())}"
            )
        return tokens

    # ------------------------------------------------------------------ forward
    def _attention(self, a: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
        R, B, T, d = a.shape
        H = self.heads
        dk = d // H
        qkv = _linear(a, w, b).reshape(R, B, T, 3, H, dk)
        q, k, v = (np.ascontiguousarray(qkv[:, :, :, i].transpose(0, 1, 3, 2, 4)) for i in range(3))
        scores = np.matmul(q, np.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(dk))
        if self.causal:
            scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
        scores -= scores.max(axis=-1, keepdims=True)
        att = np.exp(scores)
        att /= att.sum(axis=-1, keepdims=True)
        o = np.matmul(att, v)  # (R, B, H, T, dk)
        return o.transpose(0, 1, 3, 2, 4).reshape(R, B, T, d), (q, k, v, att)

    def _forward(self, params: Sequence[np.ndarray], tokens: np.ndarray, keep: bool):
        """Run the network on tokens (R, B, T); return the logits (R, B, C) and the caches."""
        R = params[0].shape[0]
        h = params[0][np.arange(R)[:, None, None], tokens] + params[1][:, None, :, :]
        caches = []
        for layer in range(self.layers):
            p = params[2 + _PER_LAYER * layer : 2 + _PER_LAYER * (layer + 1)]
            a, ln1 = _layer_norm(h, p[0], p[1])
            heads, att_cache = self._attention(a, p[2], p[3])
            h = h + _linear(heads, p[4], p[5])
            m, ln2 = _layer_norm(h, p[6], p[7])
            u = _linear(m, p[8], p[9])
            if self.activation == "relu":
                z, t = np.maximum(u, 0), None
            else:
                t = np.tanh(_GELU_C * (u + 0.044715 * u**3))
                z = 0.5 * u * (1 + t)
            h = h + _linear(z, p[10], p[11])
            if keep:
                caches.append((a, ln1, heads, att_cache, m, ln2, u, t, z))
        last, lnf = _layer_norm(h[:, :, -1, :], params[-4], params[-3])
        logits = _linear(last, params[-2], params[-1])
        return logits, (caches, last, lnf)

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        r"""Each replica's mean cross-entropy on its own minibatch and backpropagation's gradients.

        Parameters
        ----------
        params : list of numpy.ndarray
            As :attr:`parameter_names`, replica axis first.
        x : numpy.ndarray, shape (R, B, T)
            Token ids, one minibatch per replica.
        y : numpy.ndarray of int, shape (R, B)
            Labels in ``0 .. C-1``.

        Returns
        -------
        loss : numpy.ndarray, shape (R,)
        grads : list of numpy.ndarray
            Shaped like `params`.

        Notes
        -----
        The backward pass of attention: with :math:`A = \operatorname{softmax}(S)`,
        :math:`S = Q K^\top/\sqrt{d_k}` and :math:`O = A V`, :math:`\bar A = \bar O V^\top`,
        :math:`\bar V = A^\top \bar O`, :math:`\bar S = A \odot (\bar A - (\bar A \odot A)
        \mathbf 1 \mathbf 1^\top)`, :math:`\bar Q = \bar S K / \sqrt{d_k}`,
        :math:`\bar K = \bar S^\top Q / \sqrt{d_k}`. Layer normalization's:
        :math:`\bar x = (\bar{\hat x} - \operatorname{mean}(\bar{\hat x}) - \hat x\,
        \operatorname{mean}(\bar{\hat x} \odot \hat x)) / \sigma`.
        """
        R = self._check_params(params)
        tokens = self._tokens(x, "x", 3)
        if tokens.shape[0] != R:
            raise ValueError(f"x must hold one minibatch per replica ({R}), got {tokens.shape}")
        labels = np.asarray(y)
        if labels.dtype.kind not in "iu" or labels.shape != tokens.shape[:2]:
            raise ValueError(
                f"y must be integer labels of shape {tokens.shape[:2]} (one per sequence of x), "
                f"got {_describe(y)}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise ValueError(
                f"y must hold labels in 0..{self.classes - 1}, got {int(labels.min())} to "
                f"{int(labels.max())}"
            )
        logits, (caches, last, lnf) = self._forward(params, tokens, keep=True)
        loss, g = replica_cross_entropy(logits, labels.astype(np.int64))
        grads: list[Any] = [None] * len(params)
        d_last, grads[-2], grads[-1] = _linear_backward(g, last, params[-2])
        d_last, grads[-4], grads[-3] = _layer_norm_backward(d_last, lnf)
        _, B, T = tokens.shape
        dh = np.zeros((R, B, T, self.d_model), dtype=g.dtype)
        dh[:, :, -1, :] = d_last
        H, dk = self.heads, self.d_model // self.heads
        for layer in reversed(range(self.layers)):
            base = 2 + _PER_LAYER * layer
            p = params[base : base + _PER_LAYER]
            a, ln1, heads, (q, k, v, att), m, ln2, u, t, z = caches[layer]
            dz, grads[base + 10], grads[base + 11] = _linear_backward(dh, z, p[10])
            if self.activation == "relu":
                du = dz * (u > 0)
            else:
                du = dz * (
                    0.5 * (1 + t) + 0.5 * u * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * u * u)
                )
            dm, grads[base + 8], grads[base + 9] = _linear_backward(du, m, p[8])
            dx, grads[base + 6], grads[base + 7] = _layer_norm_backward(dm, ln2)
            dh = dh + dx
            dheads, grads[base + 4], grads[base + 5] = _linear_backward(dh, heads, p[4])
            do = dheads.reshape(R, B, T, H, dk).transpose(0, 1, 3, 2, 4)
            datt = np.matmul(do, np.swapaxes(v, -1, -2))
            dv = np.matmul(np.swapaxes(att, -1, -2), do)
            ds = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))
            ds *= 1.0 / math.sqrt(dk)
            dq = np.matmul(ds, k)
            dkk = np.matmul(np.swapaxes(ds, -1, -2), q)
            dqkv = np.stack([dq, dkk, dv], axis=2)  # (R, B, 3, H, T, dk)
            dqkv = dqkv.transpose(0, 1, 4, 2, 3, 5).reshape(R, B, T, 3 * self.d_model)
            da, grads[base + 2], grads[base + 3] = _linear_backward(dqkv, a, p[2])
            dx, grads[base], grads[base + 1] = _layer_norm_backward(da, ln1)
            dh = dh + dx
        grads[1] = dh.sum(axis=1)
        onehot = np.zeros((R, B * T, self.vocab), dtype=dh.dtype)
        np.put_along_axis(onehot, tokens.reshape(R, B * T, 1), 1, axis=2)
        grads[0] = np.matmul(np.swapaxes(onehot, 1, 2), dh.reshape(R, B * T, self.d_model))
        return loss, grads

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's logits on one shared batch of token ids (n, T), shape (R, n, C)."""
        R = self._check_params(params)
        tokens = self._tokens(x, "x", 2)
        chunks = []
        for start in range(0, tokens.shape[0], 512):
            part = np.broadcast_to(
                tokens[start : start + 512], (R, *tokens[start : start + 512].shape)
            )
            chunks.append(self._forward(params, part, keep=False)[0])
        return np.concatenate(chunks, axis=1)

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean softmax cross-entropy against shared labels y (n,)."""
        return shared_cross_entropy(outputs, y)

    def attention_matrices(self, params: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
        """Every block's attention matrices on shared tokens x (n, T): (R, n, H, T, T) each."""
        R = self._check_params(params)
        tokens = np.broadcast_to(self._tokens(x, "x", 2), (R, *np.shape(x)))
        out = []
        h = params[0][np.arange(R)[:, None, None], tokens] + params[1][:, None, :, :]
        for layer in range(self.layers):
            p = params[2 + _PER_LAYER * layer : 2 + _PER_LAYER * (layer + 1)]
            a, _ = _layer_norm(h, p[0], p[1])
            heads, (_, _, _, att) = self._attention(a, p[2], p[3])
            out.append(att)
            h = h + _linear(heads, p[4], p[5])
            m, _ = _layer_norm(h, p[6], p[7])
            u = _linear(m, p[8], p[9])
            if self.activation == "relu":
                z = np.maximum(u, 0)
            else:
                z = 0.5 * u * (1 + np.tanh(_GELU_C * (u + 0.044715 * u**3)))
            h = h + _linear(z, p[10], p[11])
        return out


def _one_replica(
    model: TransformerModel, scheme: str, rng: np.random.Generator
) -> list[np.ndarray]:
    d, f, L = model.d_model, model.d_ff, model.layers

    def torch_linear(fan_out: int, fan_in: int) -> tuple[np.ndarray, np.ndarray]:
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) and nn.Linear's bias
        return (rng.uniform(-bound, bound, (fan_out, fan_in)),
                rng.uniform(-bound, bound, fan_out))  # fmt: skip

    def normal(std: float, *shape: int) -> np.ndarray:
        return std * rng.standard_normal(shape)

    ones, zeros = np.ones(d), np.zeros(d)
    if scheme == "pytorch":
        params = [rng.standard_normal((model.vocab, d)), rng.standard_normal((model.length, d))]
        for _ in range(L):
            bound = math.sqrt(6.0 / (d + 3 * d))  # xavier_uniform_ on in_proj_weight (3d, d)
            w_qkv = rng.uniform(-bound, bound, (3 * d, d))
            w_o, _ = torch_linear(d, d)  # out_proj: nn.Linear's weight, bias set to 0
            w_1, b_1 = torch_linear(f, d)
            w_2, b_2 = torch_linear(d, f)
            params += [ones, zeros, w_qkv, np.zeros(3 * d), w_o, zeros,
                       ones, zeros, w_1, b_1, w_2, b_2]  # fmt: skip
        w_out, b_out = torch_linear(model.classes, d)
    else:
        if scheme == "gpt2":
            std, out_std = 0.02, 0.02 / math.sqrt(2 * L)
        else:  # small_init and wang_init, as GPT-NeoX's init_functions.py computes them
            std = math.sqrt(2.0 / (5 * d))
            out_std = 2.0 / L / math.sqrt(d)
        params = [normal(std, model.vocab, d), normal(std, model.length, d)]
        for _ in range(L):
            params += [ones, zeros, normal(std, 3 * d, d), np.zeros(3 * d),
                       normal(out_std, d, d), zeros, ones, zeros, normal(std, f, d), np.zeros(f),
                       normal(out_std, d, f), zeros]  # fmt: skip
        w_out, b_out = normal(std, model.classes, d), np.zeros(model.classes)
    return [*params, ones, zeros, w_out, b_out]


def init_transformer(
    model: TransformerModel,
    scheme: str,
    rngs: Sequence[np.random.Generator],
    *,
    dtype: Any = np.float32,
) -> list[np.ndarray]:
    r"""Draw one initialization per generator and stack them: the parameters of R replicas.

    Schemes (LayerNorm gains 1 and biases 0 in all three):

    - ``"pytorch"``: what the modules of ``torch.nn`` give a Pre-LN block built from
      ``nn.Embedding`` (token and position embeddings :math:`N(0, 1)`),
      ``nn.MultiheadAttention`` (``in_proj_weight`` of shape (3d, d) by ``xavier_uniform_``,
      :math:`U(\pm\sqrt{6/(4d)})`; ``in_proj_bias`` and ``out_proj.bias`` 0; ``out_proj.weight``
      nn.Linear's default) and ``nn.Linear`` for the MLP and the readout
      (``kaiming_uniform_(a=sqrt(5))``, i.e. :math:`U(\pm 1/\sqrt{\text{fan\_in}})`, bias the
      same). As in ``MultiheadAttention._reset_parameters`` and ``Linear.reset_parameters``.
    - ``"gpt2"``: nanoGPT's GPT-2 initialization (``model.py``, ``_init_weights``): every weight
      and embedding :math:`N(0, 0.02^2)`, biases 0, and the residual projections (:math:`W_O`
      and :math:`W_2`) :math:`N(0, (0.02/\sqrt{2L})^2)`, GPT-2's "scale the weights of residual
      layers at initialization by a factor of :math:`1/\sqrt N`" (Radford et al. 2019, section
      2.3) with :math:`N = 2L` residual branches.
    - ``"small_init"``: GPT-NeoX's ``small_init`` for every weight and embedding,
      :math:`N(0, 2/(5d))` (``init_functions.py``, which credits Nguyen & Salazar 2019), and its
      ``wang_init`` for the residual projections, standard deviation :math:`2/(L\sqrt d)`;
      biases 0.

    Parameters
    ----------
    model : TransformerModel
    scheme : {"pytorch", "gpt2", "small_init"}
    rngs : sequence of numpy.random.Generator
        One per replica; replica r's weights come from ``rngs[r]`` only.
    dtype : numpy dtype, default float32

    Returns
    -------
    list of numpy.ndarray
        As :attr:`TransformerModel.parameter_names`, replica axis first.

    Examples
    --------
    >>> model = TransformerModel(vocab=6, length=5, d_model=8, heads=2, layers=2, d_ff=16,
    ...                          classes=3)
    >>> params = init_transformer(model, "gpt2", [np.random.default_rng(0)], dtype=np.float64)
    >>> names = model.parameter_names
    >>> round(float(params[names.index("w_2.1")].std()), 2)  # 0.02 / sqrt(4)
    0.01
    """
    if not isinstance(model, TransformerModel):
        raise TypeError(f"model must be an eiginit.TransformerModel, got {_describe(model)}")
    if scheme not in TRANSFORMER_INITS:
        raise ValueError(f"scheme must be one of {TRANSFORMER_INITS}, got {_describe(scheme)}")
    if isinstance(rngs, np.random.Generator) or not isinstance(rngs, Sequence) or not rngs:
        raise TypeError(
            f"rngs must be a non-empty list of numpy.random.Generator (one per replica), got "
            f"{_describe(rngs)}"
        )
    dtype = check_float_dtype(dtype)
    replicas = [_one_replica(model, scheme, check_rng(g)) for g in rngs]
    return [
        np.ascontiguousarray(np.stack(arrays).astype(dtype))
        for arrays in zip(*replicas, strict=True)
    ]


def associative_recall(
    n: int, *, pairs: int, keys: int, values: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""Sequences of stored key-value pairs and a query key; the label is the query's value.

    A sequence holds :math:`P` pair tokens and one query token. Pair :math:`i` stores a key
    :math:`k_i` (the :math:`P` keys of a sequence distinct, drawn from ``keys`` symbols) with a
    value :math:`v_i` (drawn independently from ``values`` symbols) as the single token id
    :math:`k_i \cdot \text{values} + v_i`; the last token is the query, id
    :math:`\text{keys} \cdot \text{values} + q` with :math:`q` one of the :math:`k_i`,
    uniformly; the label is the value :math:`v_i` stored with it. The vocabulary has
    ``keys * (values + 1)`` symbols. Guessing gives accuracy ``1/values``. The answer sits at a
    random position, so the query must find the token whose key matches its own and copy that
    token's value: content-based lookup, what one attention head does (associative recall, as
    in Ba et al. 2016; here with key and value in one token, so that one layer can solve it).

    Parameters
    ----------
    n : int
        The number of sequences, >= 1.
    pairs : int
        P, >= 1 and <= `keys`; sequences have length P + 1.
    keys, values : int
        The sizes of the two alphabets, >= 2.
    rng : numpy.random.Generator

    Returns
    -------
    x : numpy.ndarray of int64, shape (n, P + 1)
        Token ids.
    y : numpy.ndarray of int64, shape (n,)
        Labels in ``0 .. values-1``.

    Examples
    --------
    >>> x, y = associative_recall(3, pairs=2, keys=4, values=3, rng=np.random.default_rng(0))
    >>> x.shape, bool(np.all(x[:, -1] >= 12))
    ((3, 3), True)
    >>> query = x[:, -1] - 12
    >>> stored = x[:, :-1]
    >>> match = stored // 3 == query[:, None]  # exactly one pair holds the query's key
    >>> match.sum(axis=1).tolist(), bool(np.all(stored[match] % 3 == y))
    ([1, 1, 1], True)
    """
    n = check_int(n, "n", minimum=1)
    keys = check_int(keys, "keys", minimum=2)
    values = check_int(values, "values", minimum=2)
    pairs = check_int(pairs, "pairs", minimum=1, maximum=keys)
    rng = check_rng(rng)
    key_ids = np.argsort(rng.random((n, keys)), axis=1)[:, :pairs]
    value_ids = rng.integers(0, values, size=(n, pairs))
    which = rng.integers(0, pairs, size=n)
    rows = np.arange(n)
    x = np.empty((n, pairs + 1), dtype=np.int64)
    x[:, :pairs] = key_ids * values + value_ids
    x[:, -1] = keys * values + key_ids[rows, which]
    return x, value_ids[rows, which].astype(np.int64)


def framework_attention_defaults(framework: str, d_model: int, heads: int) -> dict[str, float]:
    r"""Return the variance of each attention weight as a framework's default initializes it.

    For self-attention of width :math:`d` with :math:`H` heads of :math:`d_k = d/H`:

    - ``"torch"``: ``torch.nn.MultiheadAttention(d, H)`` (also inside
      ``nn.TransformerEncoderLayer``) draws the fused ``in_proj_weight`` of shape
      :math:`(3d, d)` with ``xavier_uniform_``, whose fans are those of the whole fused matrix:
      variance :math:`2/(d + 3d) = 1/(2d)` for the query, key and value weights, half of
      Xavier's :math:`1/d` for a :math:`d \times d` matrix. ``in_proj_bias`` and
      ``out_proj.bias`` are set to 0; ``out_proj.weight`` keeps ``nn.Linear``'s
      ``kaiming_uniform_(a=sqrt(5))``, :math:`U(\pm 1/\sqrt d)`, variance :math:`1/(3d)`
      (``MultiheadAttention._reset_parameters``, torch 2.x).
    - ``"keras"``: ``keras.layers.MultiHeadAttention(num_heads=H, key_dim=d/H)`` draws the
      query, key, value and output kernels, shapes :math:`(d, H, d_k)` and
      :math:`(H, d_k, d)`, with ``glorot_uniform`` over fans :math:`d` and :math:`H d_k`:
      variance :math:`2/(d + H d_k) = 1/d`; biases 0 (Keras 3).

    ``"logit"`` is the variance of an attention logit :math:`q \cdot k/\sqrt{d_k}` for
    inputs of unit variance (what a LayerNorm hands to a Pre-LN block), from
    :func:`eiginit.logit_variance` with :math:`\sigma^2 = d\, \operatorname{Var}(W_Q)`:
    :math:`(d \operatorname{Var} W_Q)^2`.

    Parameters
    ----------
    framework : {"torch", "keras"}
    d_model : int
        d, >= 1.
    heads : int
        H, which must divide `d_model`.

    Returns
    -------
    dict of str to float
        ``"query"``, ``"key"``, ``"value"``, ``"output"`` (weight variances), ``"in_bias"``,
        ``"out_bias"`` (bias variances) and ``"logit"``.

    Examples
    --------
    >>> framework_attention_defaults("torch", 64, 4)["logit"], framework_attention_defaults(
    ...     "keras", 64, 4)["logit"]
    (0.25, 1.0)
    """
    from eiginit.models.attention import logit_variance

    d = check_int(d_model, "d_model", minimum=1)
    h = check_int(heads, "heads", minimum=1)
    if d % h:
        raise ValueError(f"heads must divide d_model, got heads = {h} and d_model = {d}")
    if framework == "torch":
        qkv, out = 2.0 / (d + 3 * d), 1.0 / (3 * d)
    elif framework == "keras":
        qkv = out = 2.0 / (d + h * (d // h))
    else:
        raise ValueError(f"framework must be 'torch' or 'keras', got {_describe(framework)}")
    return {
        "query": qkv,
        "key": qkv,
        "value": qkv,
        "output": out,
        "in_bias": 0.0,
        "out_bias": 0.0,
        "logit": logit_variance(d // h, sigma_q2=d * qkv),
    }
