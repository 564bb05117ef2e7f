"""Show why the book is not built with ``-j`` while the execution cache is on.

With ``sphinx-build -j N``, notebooks execute in N worker processes that share one jupyter-cache
SQLite database. This script reproduces, without Sphinx, what two workers do when their notebooks
finish together (``get_cache``, ``add_nb_to_project``, ``cache_notebook_bundle``) and counts the
failures. Two races show up: creating a fresh database from two processes ("table ... already
exists"), and ``truncate_caches`` in one worker deleting, or failing on, the record another worker
is writing (``KeyError: Notebook file does not exist``), because its two queries are not one
transaction. Usage: ``python -m booktools.cache_race [--trials 40] [--precreate]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
from collections import Counter
from pathlib import Path

__all__ = ["main"]


def _worker(path: str, i: int, barrier, queue) -> None:
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    try:
        barrier.wait()
        cache = get_cache(path)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = {i}")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        file = Path(path) / f"nb{i}.ipynb"
        nbformat.write(nb, file)
        record = cache.add_nb_to_project(str(file))
        bundle = CacheBundleIn(nb, record.uri, data={"execution_seconds": 1.0})
        cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
        queue.put("ok")
    except Exception as error:  # count every kind of failure
        queue.put(f"{type(error).__name__}: {str(error).splitlines()[0][:90]}")


def main(argv: list[str] | None = None) -> int:
    """Run the trials and print the failures; return 1 if any worker failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--precreate", action="store_true", help="create the database first")
    args = parser.parse_args(argv)
    context = mp.get_context("fork")
    outcomes: Counter[str] = Counter()
    for _ in range(args.trials):
        with tempfile.TemporaryDirectory() as path:
            if args.precreate:
                from jupyter_cache import get_cache

                get_cache(path).list_cache_records()
            barrier, queue = context.Barrier(2), context.Queue()
            workers = [
                context.Process(target=_worker, args=(path, i, barrier, queue)) for i in range(2)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            outcomes.update(queue.get() for _ in workers)
    for outcome, count in outcomes.most_common():
        print(f"{count:4d}  {outcome}")
    return 0 if set(outcomes) == {"ok"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
