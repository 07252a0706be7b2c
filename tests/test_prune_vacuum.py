"""On SQLite a prune ends with VACUUM, so the journal file shrinks; with vacuum=False it does not."""

from __future__ import annotations

import shutil

from runjournal.journal import Journal

from ._prune_support import CUTOFF, expected, plant, totals


def test_sqlite_file_shrinks_after_prune(tmp_path):
    # Closing a journal checkpoints its WAL into the file and removes it: each file is then the whole journal.
    vacuumed, kept_pages = tmp_path / "vacuumed.sqlite", tmp_path / "not_vacuumed.sqlite"
    with Journal.open(f"sqlite:///{vacuumed}") as journal:
        planted = plant(journal, 3000, payload_bytes=2000)
    assert not vacuumed.with_name(vacuumed.name + "-wal").exists()
    shutil.copyfile(vacuumed, kept_pages)
    size = vacuumed.stat().st_size
    assert size > 6_000_000

    with Journal.open(f"sqlite:///{vacuumed}") as journal:
        assert journal.prune(CUTOFF) == totals(expected(planted))
        wal = vacuumed.with_name(vacuumed.name + "-wal")
        # Already small while the journal is open: VACUUM's pages were checkpointed into the file.
        assert vacuumed.stat().st_size + (wal.stat().st_size if wal.exists() else 0) < size * 0.6
    with Journal.open(f"sqlite:///{kept_pages}") as journal:
        assert journal.prune(CUTOFF, vacuum=False) == totals(expected(planted))

    assert vacuumed.stat().st_size < size * 0.6  # 1,665 of 3,000 runs and 1,998 of 3,000 traces went
    assert kept_pages.stat().st_size == size  # the freed pages stay in the file without VACUUM
    with Journal.open(f"sqlite:///{vacuumed}") as journal:
        assert len(journal.list_runs(limit=None)) == 3000 - len(expected(planted))
