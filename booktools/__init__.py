"""Tools that build, check, benchmark and scaffold the eiginit book (not part of the package).

- :mod:`booktools.build`: execution mode, the execution-cache key and reproducibility settings,
  imported by ``conf.py``.
- :mod:`booktools.chapters`: reads the table of contents and the chapters' cells, and the
  consistency checks run by ``tests/test_book.py``.
- :mod:`booktools.scaffold`: ``nox -s chapter -- <slug> "<Title>"`` makes a new chapter from
  ``templates/chapter.md`` and adds it to the table of contents.
- :mod:`booktools.bench`: ``nox -s bench``, the build benchmark table.
- :mod:`booktools.repro`: ``nox -s repro``, two clean builds must be byte-identical.
- :mod:`booktools.template_check`: ``nox -s template``, a scaffolded chapter builds strictly.
"""
