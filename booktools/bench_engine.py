"""Benchmark the one training engine (``nox -s bench -- --engine``; a benchmark, not a test).

Prints, measured in the same run, the medians of interleaved rounds:

- numpy's batched matrix-product rate, ``np.matmul`` on float32 stacks ``(R, B, n) x (R, n,
  n)``: the ceiling for a stacked MLP;
- the engine's MLP step (``MLPModel.loss_and_gradients`` and one in-place Adam or SGD step) at
  the same shapes, as FLOP/s and as a fraction of that rate (the fraction moves less than either
  rate when other work loads the machine), and the same for whole
  :func:`eiginit.training.engine.fit`
  runs of that network (minibatch gathering, divergence checks and validation included);
- training steps per second of :func:`eiginit.training.engine.fit` for every architecture of the
engine
  (MLP, Elman RNN, 1-D CNN, residual MLP, muP MLP).

Each figure is printed beside the one stored in ``booktools/bench_baseline.json`` for the same
``OPENBLAS_NUM_THREADS`` setting and clock (the code before the throughput work, with the
machine and the commit it was measured on), with their ratio. With ``--against REV`` the
"before" figures are measured in this run instead, from the ``eiginit`` of git revision ``REV``
(``baseline``: the stored baseline's commit), in separate processes whose rounds alternate with
the current code's; the last column then gives the range of the rounds' ratios (their noise).
``--write-baseline`` stores the "before" figures (with ``--against``) or this run's. Timings on
a shared machine: compare medians, read ratios inside the rounds' range as ties, prefer
``--clock cpu`` single-threaded, and never assert timings in tests.

Usage: ``python -m booktools.bench_engine [--replicas 24] [--depth 12] [--width 64]
[--batch 64] [--repeats 5] [--clock {wall,cpu}] [--against REV] [--write-baseline]``. Set
``OPENBLAS_NUM_THREADS=1`` for a single-core figure.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["main", "matmul_rate", "measure_round", "mlp_step_rate"]

#: The stored figures of the code before the throughput work (see the module docstring).
BASELINE = Path(__file__).with_name("bench_baseline.json")
#: Epochs per timed fit run (the per-run setup, evaluation included, is part of the figure).
EPOCHS = 3


#: The clock of every timing: wall-clock, or with ``--clock cpu`` this process's CPU time (on a
#: shared machine the time-slices other work takes are then not counted; single-threaded only).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def _seconds(run: Callable[[], object], inner: int) -> float:
    """Return the time of one call of `run`, averaged over `inner` calls (after a warm-up)."""
    run()
    start = _clock()
    for _ in range(inner):
        run()
    return (_clock() - start) / inner


def _mlp_flops(sizes: list[int], replicas: int, batch: int) -> int:
    """Multiply-adds x 2 of one training step: forward, weight gradient, input gradient."""
    total = 0
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        products = 3 if layer else 2  # the first layer passes no gradient back to the data
        total += products * 2 * replicas * batch * fan_in * fan_out
    return total


def matmul_rate(replicas: int, batch: int, width: int, inner: int = 200) -> float:
    """FLOP/s of np.matmul on float32 stacks (replicas, batch, width) x (replicas, width, width)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((replicas, batch, width)).astype(np.float32)
    w = rng.standard_normal((replicas, width, width)).astype(np.float32)
    return 2 * replicas * batch * width * width / _seconds(lambda: np.matmul(x, w), inner)


def _mlp(sizes: list[int], replicas: int, dtype: type = np.float32):
    from eiginit import MLP, kaiming_normal
    from eiginit.training.engine import MLPModel

    init = functools.partial(kaiming_normal, nonlinearity="relu")
    nets = [
        MLP.create(sizes, "relu", init, rng=np.random.default_rng(s), dtype=dtype)
        for s in range(replicas)
    ]
    return MLPModel.from_networks(nets)


def mlp_step_rate(
    replicas: int, depth: int, width: int, batch: int, optimizer: str | None = "adam"
) -> float:
    """Return the FLOP/s of the engine's MLP step: gradients, then `optimizer` (or none)."""
    from eiginit.training.engine import Optimizer

    sizes = [width] * (depth + 1)
    model, params = _mlp(sizes, replicas)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((replicas, batch, width)).astype(np.float32)
    y = rng.integers(0, width, (replicas, batch))
    opt = Optimizer(optimizer or "sgd", params, np.full((replicas, len(params)), 1e-4))

    def step() -> None:
        _, grads = model.loss_and_gradients(params, x, y)
        if optimizer is not None:
            opt.step(params, grads)

    return _mlp_flops(sizes, replicas, batch) / _seconds(step, 20)


def _classification(n: int, features: int, classes: int, seed: int = 0):
    from eiginit.datasets import Dataset

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    y = rng.integers(0, classes, n)
    a, b = n * 3 // 4, n * 7 // 8
    return Dataset(x[:a], y[:a], x[b:], y[b:], classes, "noise", x_val=x[a:b], y_val=y[a:b])


def _fit_runs(
    replicas: int, depth: int, width: int, batch: int
) -> dict[str, tuple[Callable[[], object], int]]:
    """Return, per architecture, a fit run and its number of optimizer steps."""
    from eiginit import (
        CNN1d,
        ElmanRNN,
        adding_problem,
        delta_orthogonal,
        parametrize,
        residual_classifier,
    )
    from eiginit.training.engine import CNNModel, MuPModel, ResidualModel, RNNModel, fit

    seeds = list(range(replicas))
    lr = np.full(replicas, 1e-3)
    rng = np.random.default_rng(0)
    runs: dict[str, tuple[Callable[[], object], int]] = {}

    def steps(n: int, size: int, drop_last: bool = False) -> int:
        return EPOCHS * (n // size if drop_last else -(-n // size))

    # the MLP at the headline shapes: depth x width, `width` classes, Adam
    mdata = _classification(4 * 4 * batch, width, width)
    model, params = _mlp([width] * (depth + 1), replicas)
    runs["MLP, Adam"] = (
        lambda: fit(model, params, mdata, lr=lr, seeds=seeds, epochs=EPOCHS, batch_size=batch),
        steps(mdata.x_train.shape[0], batch),
    )
    runs["MLP, SGD"] = (
        lambda: fit(
            model,
            params,
            mdata,
            lr=lr,
            seeds=seeds,
            optimizer="sgd",
            epochs=EPOCHS,
            batch_size=batch,
        ),
        steps(mdata.x_train.shape[0], batch),
    )

    # the Elman RNN on the adding problem, SGD with clipping
    net = ElmanRNN.create(np.stack([np.eye(32)] * replicas), 2, 1, rng=rng, dtype=np.float32)
    x, y = adding_problem(1024, 20, rng=rng)
    rmodel, rparams = RNNModel.from_network(net)
    runs["Elman RNN, SGD + clip"] = (
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
        steps(1024, 32),
    )

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
    runs["1-D CNN, Adam"] = (
        lambda: fit(cmodel, cparams, cdata, lr=lr, seeds=seeds, epochs=EPOCHS, batch_size=64),
        steps(cdata.x_train.shape[0], 64),
    )

    # the residual classifier, Adam
    data = _classification(1024, 64, 10)
    schemes = ["fixup", "rezero", "scaled", "kaiming"] * (-(-replicas // 4))
    res = residual_classifier(schemes[:replicas], inputs=64, classes=10, width=64, depth=6, rng=rng)
    smodel, sparams = ResidualModel.from_network(res)
    runs["residual MLP, Adam"] = (
        lambda: fit(smodel, sparams, data, lr=lr, seeds=seeds, epochs=EPOCHS, batch_size=64),
        steps(data.x_train.shape[0], 64),
    )

    # the muP network, plain SGD with per-layer rates
    scales = parametrize([64, 256, 256, 10], "mup", base_width=64)
    pmodel, pparams = MuPModel.create(scales, replicas=replicas, rng=rng)
    runs["muP MLP, SGD"] = (
        lambda: fit(
            pmodel,
            pparams,
            data,
            lr=0.05,
            seeds=seeds,
            optimizer="sgd",
            momentum=0.0,
            epochs=EPOCHS,
            batch_size=64,
            drop_last=True,
        ),
        steps(data.x_train.shape[0], 64, drop_last=True),
    )
    return runs


def _machine() -> dict[str, object]:
    """Facts that decide the timings: CPU, core count, BLAS, numpy, Python, threads, commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "blas": f"{blas.get('name')} {blas.get('version')}",
        "numpy": np.__version__,
        "python": platform.python_version(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load average": [round(v, 1) for v in os.getloadavg()],
    }


def measure_round(replicas: int, depth: int, width: int, batch: int, fits: bool) -> dict:
    """Measure every figure once, each fraction against the matmul rate of the same round."""
    peak = matmul_rate(replicas, batch, width)
    figures = {"matmul GFLOP/s": peak / 1e9}
    for name, label in _STEPS:
        rate = mlp_step_rate(replicas, depth, width, batch, None if name == "none" else name)
        figures[f"step fraction, {label}"] = rate / peak
    if fits:
        flops = _mlp_flops([width] * (depth + 1), replicas, batch)
        for name, (run, steps) in _fit_runs(replicas, depth, width, batch).items():
            rate = steps / _seconds(run, 1)
            figures[f"fit steps/s, {name}"] = rate
            if name.startswith("MLP"):
                figures[f"fit fraction, {name}"] = rate * flops / peak
    return figures


#: The optimizers of the MLP step: name for mlp_step_rate ("none": gradients only), label.
_STEPS = (("adam", "gradients + Adam"), ("sgd", "gradients + SGD"), ("none", "gradients only"))


def _round_elsewhere(source: Path, args: argparse.Namespace) -> dict:
    """Run one round with the eiginit package found in `source` (a separate process)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "round.json"
        command = [sys.executable, "-m", "booktools.bench_engine", "--round-json", str(out)]
        command += ["--clock", args.clock]
        for name in ("replicas", "depth", "width", "batch"):
            command += [f"--{name}", str(getattr(args, name))]
        if args.skip_fit:
            command.append("--skip-fit")
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(root)])}
        # run from `source`: python -m puts the working directory first on the path
        subprocess.run(command, check=True, env=env, cwd=source)
        figures = json.loads(out.read_text())
        if not Path(figures.pop("eiginit")).is_relative_to(source):
            raise RuntimeError(f"the round did not import eiginit from {source}")
        return figures


def _ratio(after: float, before: float | None) -> str:
    return f"{after / before:7.2f}" if before else f"{'-':>7}"


def _before(value: float | None) -> str:
    return f"{value:9.2f}" if value is not None else f"{'-':>9}"


def _table(
    title: str, rows: list[tuple[str, str]], before: dict, after: dict, spread: dict
) -> None:
    print(f"\n{title}")
    print(f"  {'':60} {'before':>9} {'after':>9} {'ratio':>7}  {'round ratios':>12}")
    for key, label in rows:
        if key in after:
            old = before.get(key)
            print(
                f"  {label:60} {_before(old)} {after[key]:9.2f} {_ratio(after[key], old)}  "
                f"{spread.get(key, '')}"
            )


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
    parser.add_argument("--skip-fit", action="store_true", help="only the MLP step's FLOP rate")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="measure 'before' in this run from the eiginit of git revision REV, in rounds "
        "interleaved with the current code's ('baseline': the stored baseline's commit)",
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help=f"store this run's medians in {BASELINE.name} as the 'before' figures",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall-clock time, or this process's CPU time (not counting other work's "
        "time-slices on a shared machine; only meaningful with OPENBLAS_NUM_THREADS=1)",
    )
    parser.add_argument("--round-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]
    R, L, n, B = args.replicas, args.depth, args.width, args.batch
    if args.round_json is not None:  # one round for a parent process (see --against)
        import eiginit

        figures = measure_round(R, L, n, B, not args.skip_fit) | {"eiginit": eiginit.__file__}
        args.round_json.write_text(json.dumps(figures))
        return 0
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    load = os.getloadavg()
    print(
        f"load average before: {', '.join(f'{v:.1f}' for v in load)} on {os.cpu_count()} CPUs; "
        f"OPENBLAS_NUM_THREADS={threads}; {args.clock} clock, medians of {args.repeats} rounds "
        "(a busy machine slows the rates, the fractions less)"
    )
    stored = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    rounds: list[dict] = []
    old_rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            rev = stored["commit"] if args.against == "baseline" else args.against
            rev = subprocess.run(
                ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
                cwd=BASELINE.parent.parent,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            archive = subprocess.run(
                ["git", "archive", rev, "eiginit"],
                cwd=BASELINE.parent.parent,
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            print(f"before: eiginit of commit {rev[:10]}, measured in this run, interleaved")
        for _ in range(args.repeats):
            if args.against:
                old_rounds.append(_round_elsewhere(Path(tmp), args))
            rounds.append(measure_round(R, L, n, B, not args.skip_fit))
    after = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
    spread: dict[str, str] = {}
    if old_rounds:
        before = {key: float(np.median([r[key] for r in old_rounds])) for key in old_rounds[0]}
        for key in before:  # each round's after/before: their range shows the noise
            ratios = [a[key] / b[key] for a, b in zip(rounds, old_rounds, strict=True)]
            spread[key] = f"{min(ratios):.2f}-{max(ratios):.2f}"
    else:
        entry = stored.get("baselines", {}).get(
            f"OPENBLAS_NUM_THREADS={threads}, {args.clock} clock"
        )
        before = entry["figures"] if entry else {}
        if entry:
            m = entry["machine"] | {"commit": stored["commit"]}
            print(
                f"before: stored in {BASELINE.name} (commit {m['commit'][:10]}, {m['date']}, "
                f"{m['cpu']}, {m['blas']}); --against baseline measures it in this run"
            )
    rows = [("matmul GFLOP/s", f"numpy batched matmul ({R}, {B}, {n}) x ({R}, {n}, {n}), GFLOP/s")]
    rows += [(f"step fraction, {label}", f"engine step, {label}: fraction") for _, label in _STEPS]
    rows += [(f"fit fraction, MLP, {o}", f"fit, MLP, {o}: fraction") for o in ("Adam", "SGD")]
    _table(
        f"MLP, float32: depth {L}, width {n}, {R} replicas, batch {B}; FLOP rate as a fraction "
        "of the matmul rate",
        rows,
        before,
        after,
        spread,
    )
    names = [key for key in after if key.startswith("fit steps/s, ")]
    if names:
        _table(
            f"fit, training steps per second ({R} replicas, {EPOCHS} epochs per run)",
            [(key, key.removeprefix("fit steps/s, ")) for key in names],
            before,
            after,
            spread,
        )
    if args.write_baseline:  # with --against, the figures of that revision
        key = f"OPENBLAS_NUM_THREADS={threads}, {args.clock} clock"
        machine = _machine()
        stored["commit"] = rev if old_rounds else machine.pop("commit")
        machine.pop("commit", None)
        figures = before if old_rounds else after
        stored.setdefault("baselines", {})[key] = {"figures": figures, "machine": machine}
        stored["shapes"] = {"replicas": R, "depth": L, "width": n, "batch": B, "epochs": EPOCHS}
        BASELINE.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        print(f"\nstored as the baseline for {key} in {BASELINE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
