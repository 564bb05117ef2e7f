"""Build tooling of the eiginit book: everything that builds, checks, times or scaffolds it.

Not part of the eiginit package (the wheel ships ``eiginit/`` only). One module per job; a
``nox`` session runs each command-line tool as ``python -m booktools.<module>``.

Used by the build (``conf.py``):

- :mod:`booktools.build`: execution mode, the execution-cache key, reproducibility settings.
- :mod:`booktools.mystnb_patches`: the patches to myst-nb's internals, each checked against the
  myst-nb code it was written for.
- :mod:`booktools.sphinx_ext`: the Sphinx extension (chapter map, API reference, offline
  MathJax, notebook downloads, offline guard, execution-time budget).
- :mod:`booktools.run_at_home`: the Sphinx extension that serves the eiginit wheel the chapters
  ran with and opens every chapter page with how to run it at home.
- :mod:`booktools.wheel`: that wheel's name, build and install line (standard library only).

Checks and tools (each a ``nox`` session):

- :mod:`booktools.chapters`: the table of contents, the chapters' cells, and the house-style
  checks run by ``tests/test_book.py``.
- :mod:`booktools.scaffold`: ``nox -s chapter -- <slug> "<Title>"``, a new chapter from
  ``templates/chapter.md``.
- :mod:`booktools.template_check`: ``nox -s template``, a scaffolded chapter builds strictly.
- :mod:`booktools.bench`: ``nox -s bench``, the build benchmark table.
- :mod:`booktools.repro`: ``nox -s repro``, two clean builds must be byte-identical.
- :mod:`booktools.browser_check`: ``nox -s browser``, the built site in headless Chromium.
- :mod:`booktools.reader_check`: ``nox -s reader``, the served wheel installed in a fresh
  environment with the line the pages print, and downloaded chapters executed there.
- :mod:`booktools.studies`: ``nox -s study``, every chapter's stored study with one progress bar
  and an estimate of the time left; :mod:`booktools.training_study` is chapter 8's, whose
  stored results the chapter reads and spot-checks.
- :mod:`booktools.runner`: project copies and ``sphinx-build`` runs shared by the tools above.
- :mod:`booktools.cache_race`: the SQLite race that forbids parallel builds with the cache.

A new tool goes here as one more module with a ``main(argv)``, a ``nox`` session that runs it
and tests in ``tests/test_booktools.py`` (a check of the built site in ``tests/test_site.py``).
What a downloaded chapter needs goes in the ``notebooks`` extra of ``pyproject.toml``, which
``nox -s lock`` adds to the lock file with every other extra.
Static files the tools need live in ``booktools/assets/``.
"""
