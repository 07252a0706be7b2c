"""runjournal's benchmark: issue 5's targets, measured against plain dlt on this machine.

How to run (from the repository root, in the project's venv)::

    .venv/bin/pip install -e '.[bench]'           # pyinstrument + psutil (profiles of missed targets)
    .venv/bin/python -m bench                      # full run, ~7-8 min on 2 cores; writes bench/results/latest.json
    .venv/bin/python -m bench --smoke              # tiny sizes, < 60 s: what CI runs so the bench cannot rot
    .venv/bin/python -m bench --only overhead traces --rounds 3
    .venv/bin/python -m bench --json /tmp/mine.json --plain

Sections (``--only NAME ...``):

- ``overhead``   ``runner(pipeline).run(data)`` against ``pipeline.run(data)``, tiny (10 rows) and medium
  (200,000 rows) loads to duckdb; plus the journal's first-open cost, reported apart.
- ``traces``     ``store_trace_info=True`` against no traces, and against dlt+'s way (a separate trace
  pipeline ``drop()`` + ``run(trace.asdict())`` after each attempt): one attempt, and three attempts
  (two transient load failures from a real ``@dlt.destination`` sink).
- ``throughput`` ``Journal.record_transition`` per second, one process and four at once on one SQLite
  journal, beside the raw write+fsync rate of the same disk.
- ``inspection`` ``runjournal runs --limit 50`` and ``runjournal show RUN_ID`` on a journal of 100,000 runs
  and 1,000,000 transitions (generated once, cached in ``bench/.cache/``).
- ``recovery``   a slot for ``runjournal recover`` (issue 3).
- ``memory``     peak RSS of the engine against plain ``pipeline.run`` on the medium load.

Method: both sides of a comparison run alternately (AB, BA, ...) on the same data, ``--rounds`` rounds
(7; 2 with ``--smoke``), each comparison in its own worker process, and in a fresh process per sample
where isolation matters (memory, first open, CLI). Medians are reported. Everything (pipelines dirs,
duckdb files, journals, ``DLT_DATA_DIR``) lives in a temporary directory, with dlt's telemetry off.

Output: a table (Rich, or ``--plain`` text) with PASS/MISS per target, and JSON: ``bench/results/latest.json``
for a full run of every section (the committed figures), ``bench/results/smoke.json`` for ``--smoke`` and
``bench/results/partial.json`` for ``--only``/``--rounds`` runs (both git-ignored), unless ``--json PATH``.
For each missed target a profile is written to ``bench/results/profile-<name>.txt`` (pyinstrument;
tracemalloc for memory) and its summary is printed. The exit code is 1 when a section could not be
measured (an error), never for a missed target.
"""
