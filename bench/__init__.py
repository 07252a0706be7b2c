"""runjournal's benchmark: issue 5's targets, measured against plain dlt on this machine.

How to run (from the repository root, in the project's venv)::

    .venv/bin/pip install -e '.[bench]'           # pyinstrument, for the profiles of missed targets
    .venv/bin/python -m bench                      # full run, ~8 min on 2 cores; writes bench/results/latest.json
    .venv/bin/python -m bench --smoke              # tiny sizes, < 60 s: what CI runs so the bench cannot rot
    .venv/bin/python -m bench --only overhead traces --rounds 3
    .venv/bin/python -m bench --smoke --profile all --plain   # also exercises every profiler (~2 min)

Options: ``--smoke``; ``--only NAME ...``; ``--rounds N`` (7; 2 with ``--smoke``); ``--json PATH``;
``--plain`` (text table instead of Rich); ``--profile miss|all|none`` (default ``miss``, ``none`` with
``--smoke``); ``--keep-tmp`` (keep the temporary directory to look at the pipelines and journals).

Sections (``--only NAME ...``):

- ``overhead``   ``runner(pipeline).run(data)`` against ``pipeline.run(data)``, tiny (10 rows) and medium
  (200,000 rows) loads to duckdb, each side a fresh Pipeline instance per run; plus the journal's
  first-open cost in fresh processes, reported apart.
- ``traces``     ``store_trace_info=...`` against no traces, and against dlt+'s way (a separate trace
  pipeline ``drop()`` + ``run(trace.asdict())`` after each attempt): one attempt, and three attempts
  (two transient load failures from a real ``@dlt.destination`` sink; one failure with ``--smoke``).
- ``throughput`` ``Journal.record_transition`` per second, one process and four at once on one SQLite
  journal with the production settings, beside the raw write+fsync rate of the same directory.
- ``inspection`` ``runjournal runs --limit 50`` and ``runjournal show RUN_ID`` as whole commands on a journal
  of 100,000 runs and 1,000,000 transitions (1,000 / 10,000 with ``--smoke``), generated once and cached
  in ``bench/.cache/`` (git-ignored); "skipped: CLI missing" without the console script.
- ``recovery``   a slot for ``runjournal recover`` (issue 3): not measured yet.
- ``outages``    the journal on PostgreSQL, 1 and 8 writer processes beside SQLite's (transitions/s, p99
  commit), and the cost of one outage (the server stopped 5 s: how long after it is back the writer
  moves again), on a private server the section starts (root needed, else skipped).
- ``memory``     peak RSS of the engine against plain ``pipeline.run`` on the medium load, a fresh process
  per sample; the verdict compares the two sides' minima (duckdb's load peak is bimodal, see memory.py).

Method: the sides of a comparison run alternately (AB, BA, ...; with more sides the order rotates) on the
same data, ``--rounds`` rounds, after an untimed warm-up of each side (not with ``--smoke``); each
comparison runs in its own worker process (``python -m bench._worker``), and in a fresh process per sample
where isolation matters (memory, first open, the CLI). Medians are reported (and, for the overhead, a 95%
bootstrap interval). Everything (pipelines dirs, duckdb files, journals, ``DLT_DATA_DIR``,
``RUNJOURNAL_URL``) lives in a temporary directory, with dlt's telemetry off: the user's ``~/.dlt`` and
``/var/dlt`` are never touched. Loads use dlt's jsonl loader format on both sides (see ``_data.py``).

Output: a table with PASS/MISS per target and the machine it ran on (CPU, cores, Python, dlt, disk), and
JSON: ``bench/results/latest.json`` for a full run of every section (the committed figures),
``bench/results/smoke.json`` for ``--smoke`` and ``bench/results/partial.json`` for ``--only``/``--rounds``
runs (both git-ignored), unless ``--json PATH``. For each missed target a profile is written to
``bench/results/profile-<name>.txt`` (git-ignored): pyinstrument's call tree plus a summary that is also
printed under the table (where the time goes; for the engine's overhead, its parts timed without a
profiler too); memory gets an RSS breakdown step by step instead, as pyinstrument measures time. The exit
code is 1 when a section could not be measured (an error), never for a missed target.
"""
