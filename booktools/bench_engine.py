"""Benchmark the one training engine (``nox -s bench -- --engine``; a benchmark, not a test).

Prints, measured in the same run:

- numpy's batched matrix-product rate, ``np.matmul`` on float32 stacks ``(R, B, n) x (R, n,
  n)``: the ceiling for a stacked MLP;
- the engine's MLP step (``MLPModel.loss_and_gradients`` and one in-place Adam step) at the same
  shapes, as FLOP/s and as a fraction of that rate (the fraction moves less than either rate when
  other work loads the machine);
- steps per second of every old trainer beside :func:`eiginit.engine.fit` on the same
  architecture and sizes (``train_batched``, ``train_replicas``); a removed trainer's column
  reads "removed" (``train_rnn``, ``train_cnn``, ``train_residual``: the Elman network, the 1-D
  CNN and the residual classifier train only through ``fit``).

Usage: ``python -m booktools.bench_engine [--replicas 24] [--depth 12] [--width 64]
[--batch 64] [--repeats 5]``. Set ``OPENBLAS_NUM_THREADS=1`` for a single-core figure.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import time
from collections.abc import Callable

import numpy as np

__all__ = ["main", "matmul_rate", "mlp_step_rate", "trainer_rates"]

#: Epochs per timed run of a trainer (the per-run setup, evaluation included, is shared by them).
EPOCHS = 3


def _best_seconds(run: Callable[[], object], repeats: int, inner: int) -> float:
    """Return the fastest of `repeats` timings of `inner` calls, per call (least disturbed)."""
    run()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            run()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def _mlp_flops(sizes: list[int], replicas: int, batch: int) -> int:
    """Multiply-adds x 2 of one training step: forward, weight gradient, input gradient."""
    total = 0
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        products = 3 if layer else 2  # the first layer passes no gradient back to the data
        total += products * 2 * replicas * batch * fan_in * fan_out
    return total


def matmul_rate(replicas: int, batch: int, width: int, repeats: int) -> float:
    """FLOP/s of np.matmul on float32 stacks (replicas, batch, width) x (replicas, width, width)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((replicas, batch, width)).astype(np.float32)
    w = rng.standard_normal((replicas, width, width)).astype(np.float32)
    seconds = _best_seconds(lambda: np.matmul(x, w), repeats, 200)
    return 2 * replicas * batch * width * width / seconds


def _mlp(sizes: list[int], replicas: int, dtype: type = np.float32):
    from eiginit import MLP, kaiming_normal
    from eiginit.engine import MLPModel

    init = functools.partial(kaiming_normal, nonlinearity="relu")
    nets = [
        MLP.create(sizes, "relu", init, rng=np.random.default_rng(s), dtype=dtype)
        for s in range(replicas)
    ]
    return nets, *MLPModel.from_networks(nets)


def mlp_step_rate(
    replicas: int, depth: int, width: int, batch: int, repeats: int, optimizer: str | None = "adam"
) -> tuple[float, float]:
    """Return (FLOP/s, steps/s) of the engine's MLP step: gradients, then `optimizer` (or none)."""
    from eiginit.engine import Optimizer

    sizes = [width] * (depth + 1)
    _, model, params = _mlp(sizes, replicas)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((replicas, batch, width)).astype(np.float32)
    y = rng.integers(0, width, (replicas, batch))
    opt = Optimizer(optimizer or "sgd", params, np.full((replicas, len(params)), 1e-4))

    def step() -> None:
        _, grads = model.loss_and_gradients(params, x, y)
        if optimizer is not None:
            opt.step(params, grads)

    seconds = _best_seconds(step, repeats, 20)
    return _mlp_flops(sizes, replicas, batch) / seconds, 1 / seconds


def _classification(n: int, features: int, classes: int, seed: int = 0):
    from eiginit.datasets import Dataset

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    y = rng.integers(0, classes, n)
    a, b = n * 3 // 4, n * 7 // 8
    return Dataset(x[:a], y[:a], x[b:], y[b:], classes, "noise", x_val=x[a:b], y_val=y[a:b])


def _timed(run: Callable[[], object], repeats: int) -> float:
    return _best_seconds(run, repeats, 1)


def trainer_rates(replicas: int, repeats: int) -> list[tuple[str, float, float, int]]:
    """Return steps per second of each old trainer and of fit on the same architecture."""
    from eiginit import (
        CNN1d,
        ElmanRNN,
        adding_problem,
        delta_orthogonal,
        parametrize,
        residual_classifier,
        train_batched,
        train_replicas,
    )
    from eiginit.engine import CNNModel, MuPModel, ResidualModel, RNNModel, fit

    rows = []
    seeds = list(range(replicas))
    lr = np.full(replicas, 1e-3)

    # the MLP: train_batched against fit, same networks, data, seeds, Adam
    data = _classification(1024, 64, 10)
    nets, model, params = _mlp([64] + [64] * 11 + [10], replicas)
    steps = EPOCHS * -(-data.x_train.shape[0] // 64)
    old = _timed(
        lambda: train_batched(nets, data, lrs=lr, seeds=seeds, epochs=EPOCHS, batch_size=64),
        repeats,
    )
    new = _timed(
        lambda: fit(model, params, data, lr=lr, seeds=seeds, epochs=EPOCHS, batch_size=64), repeats
    )
    rows.append(("MLP (train_batched)", steps / old, steps / new, steps))

    # the Elman RNN on the adding problem, SGD with clipping
    rng = np.random.default_rng(0)
    net = ElmanRNN.create(np.stack([np.eye(32)] * replicas), 2, 1, rng=rng, dtype=np.float32)
    x, y = adding_problem(1024, 20, rng=rng)
    steps = EPOCHS * (1024 // 32)
    old = float("nan")  # train_rnn is gone (issue 25)
    rmodel, rparams = RNNModel.from_network(net)
    new = _timed(
        lambda: fit(
            rmodel,
            rparams,
            (x, y),
            lr=0.01,
            seeds=seeds,
            optimizer="sgd",
            epochs=EPOCHS,
            batch_size=32,
            clip=1.0,
        ),
        repeats,
    )
    rows.append(("Elman RNN (train_rnn)", steps / old, steps / new, steps))

    # the 1-D CNN, Adam
    cdata = _classification(512, 40, 10)
    cnet = CNN1d.create(
        length=40,
        depth=4,
        channels=16,
        width=3,
        n_classes=10,
        init=delta_orthogonal,
        replicas=replicas,
        rng=rng,
        pool_after=(2,),
    )
    cmodel, cparams = CNNModel.from_network(cnet)
    steps = EPOCHS * -(-cdata.x_train.shape[0] // 64)
    old = float("nan")  # train_cnn is gone (issue 25)
    new = _timed(
        lambda: fit(cmodel, cparams, cdata, lr=lr, seeds=seeds, epochs=EPOCHS, batch_size=64),
        repeats,
    )
    rows.append(("1-D CNN (train_cnn)", steps / old, steps / new, steps))

    # the residual classifier, Adam
    schemes = ["fixup", "rezero", "scaled", "kaiming"] * (-(-replicas // 4))
    res = residual_classifier(schemes[:replicas], inputs=64, classes=10, width=64, depth=6, rng=rng)
    smodel, sparams = ResidualModel.from_network(res)
    steps = EPOCHS * -(-data.x_train.shape[0] // 64)
    old = float("nan")  # train_residual is gone (issue 25)
    new = _timed(
        lambda: fit(smodel, sparams, data, lr=lr, seeds=seeds, epochs=EPOCHS, batch_size=64),
        repeats,
    )
    rows.append(("residual MLP (train_residual)", steps / old, steps / new, steps))

    # the muP network, plain SGD with per-layer rates
    scales = parametrize([64, 256, 256, 10], "mup", base_width=64)
    mmodel, mparams = MuPModel.create(scales, replicas=replicas, rng=rng)
    steps = EPOCHS * (data.x_train.shape[0] // 64)
    old = _timed(
        lambda: train_replicas(
            scales,
            data,
            np.full(replicas, 0.05),
            epochs=EPOCHS,
            batch_size=64,
            rng=np.random.default_rng(0),
        ),
        repeats,
    )
    new = _timed(
        lambda: fit(
            mmodel,
            mparams,
            data,
            lr=0.05,
            seeds=seeds,
            optimizer="sgd",
            momentum=0.0,
            epochs=EPOCHS,
            batch_size=64,
            drop_last=True,
            layer_multipliers=mmodel.default_multipliers,
        ),
        repeats,
    )
    rows.append(("muP MLP (train_replicas)", steps / old, steps / new, steps))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the engine benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        prog="nox -s bench -- --engine", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--replicas", type=int, default=24)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-trainers", action="store_true", help="only the MLP FLOP rate")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(
        f"load average before: {', '.join(f'{v:.1f}' for v in load)} on {os.cpu_count()} CPUs; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (wall-clock "
        "timings: a busy machine slows them, the ratio less)"
    )
    R, L, n, B = args.replicas, args.depth, args.width, args.batch
    # Interleaved rounds, the best of each: the rates see the same machine.
    peak = 0.0
    best = dict.fromkeys(("adam", "sgd", None), (0.0, 0.0))
    for _ in range(args.repeats):
        peak = max(peak, matmul_rate(R, B, n, 1))
        for name in best:
            rate = mlp_step_rate(R, L, n, B, 1, name)
            best[name] = max(best[name], rate)
    print(f"\nMLP, float32: depth {L}, width {n}, {R} replicas, batch {B}")
    print(f"  numpy batched matmul ({R}, {B}, {n}) x ({R}, {n}, {n}): {peak / 1e9:8.2f} GFLOP/s")
    for name, label in (
        ("adam", "gradients + Adam"),
        ("sgd", "gradients + SGD"),
        (None, "gradients only"),
    ):
        flops, per_second = best[name]
        print(
            f"  engine step, {label:17} {flops / 1e9:8.2f} GFLOP/s, {per_second:7.1f} steps/s, "
            f"{flops / peak:5.2f} of the matmul rate"
        )
    if not args.skip_trainers:
        print(f"\nsteps per second, old trainer against engine.fit ({R} replicas, {EPOCHS} epochs)")
        print(f"  {'architecture':32} {'old':>9} {'engine':>9} {'ratio':>7} {'steps':>6}")
        for name, old, new, steps in trainer_rates(R, max(1, args.repeats // 2)):
            if np.isnan(old):
                print(f"  {name:32} {'removed':>9} {new:9.1f} {'':>7} {steps:6d}")
            else:
                print(f"  {name:32} {old:9.1f} {new:9.1f} {new / old:7.2f} {steps:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
