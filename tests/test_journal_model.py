"""Model-based test of the journal: Hypothesis plays random sequences of journal and machine operations
(start, transitions along the engine's own state machine, heartbeats, crash detection, concurrent
take-ups, prune, trace outbox shipping) against the real journal, on SQLite and on PostgreSQL, and
checks after every step what a small model says must hold:

- within a run, sequence numbers are 1, 2, 3... (strictly increasing, none lost);
- at most one running run, the lease's holder, per pipeline;
- a final state is left only by ``recover`` or ``resume_run``;
- every attempt is closed exactly once, and only the running run's last attempt is open;
- prune never deletes a running run (nor a lease's holder), deletes exactly what the model says, and
  leaves no orphan;
- the trace outbox gives back exactly the traces not marked shipped.
"""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from runjournal._machine import FINAL_STATES, TRANSITIONS
from runjournal.journal import (
    AttemptEnd, AttemptStart, Journal, LeaseHeld, NewRun, Owner, RunChange, RunNotReclaimable, Transition,
)

#: Where each trigger that ends a run leaves its status.
ENDINGS = {"finish": "done", "give_up": "failed", "halt": "interrupted"}
#: Edges a live run's own process takes (crash and take-ups come from outside, by their own rules).
OWN_EDGES = [(t["trigger"], source, t["dest"]) for t in TRANSITIONS if t["trigger"] not in ("crash", "recover", "resume_run")
             for source in ([t["source"]] if isinstance(t["source"], str) else t["source"])]
#: Triggers that open a new attempt; those leaving store_trace close the current one.
OPENING = {"start", "resume", "continue_run"}
PIPELINES = ("orders", "users")
CONTINUABLE = ("crashed", "interrupted", "failed")


class JournalModel(RuleBasedStateMachine):
    url: str = ""
    #: Each example's clock starts before the one of the example before it, so that its prunes (which
    #: cover the whole journal) never reach the runs earlier examples left in the same database.
    examples = itertools.count()

    def __init__(self):
        super().__init__()
        self.journal = Journal.open(self.url)
        self.prefix = uuid.uuid4().hex[:8]  # this example's pipelines, apart from earlier examples' in one database
        self.clock = itertools.count(2_000_000_000 - 100_000 * next(self.examples))
        self.runs: dict[str, dict] = {}  # run id -> status, state, attempt, seq, pipeline, started_at, open attempt
        self.unshipped: set[int] = set()
        self.lease: dict[str, str] = {}  # pipeline -> the run holding its lease (prune keeps it)
        self.traced: set[tuple[str, int]] = set()

    def teardown(self):
        self.journal.close()

    def _pipeline(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def _running(self) -> list[str]:
        return sorted(run_id for run_id, run in self.runs.items() if run["status"] == "running")

    def _now(self) -> float:
        return float(next(self.clock))

    @initialize()
    def nothing_yet(self):
        assert self.journal.list_runs(pipeline=self._pipeline(PIPELINES[0])) == []

    @rule(name=st.sampled_from(PIPELINES))
    def start(self, name):
        pipeline, at = self._pipeline(name), self._now()
        holder = next((r for r in self._running() if self.runs[r]["pipeline"] == pipeline), None)
        new = NewRun(pipeline_name=pipeline, host="model-host", pid=1, config={}, pipelines_dir="/p")
        if holder is not None:
            with pytest.raises(LeaseHeld):
                self.journal.start_leased_run(new, at=at)
            return
        run_id, _ = self.journal.start_leased_run(new, at=at)
        self.runs[run_id] = {"status": "running", "state": "created", "attempt": 0, "seq": 0, "pipeline": pipeline,
                             "started_at": at, "open": None}
        self.lease[pipeline] = run_id

    @precondition(lambda self: self._running())
    @rule(data=st.data())
    def step(self, data):
        run_id = data.draw(st.sampled_from(self._running()))
        run = self.runs[run_id]
        edges = [(trigger, dest) for trigger, source, dest in OWN_EDGES if source == run["state"]]
        trigger, dest = data.draw(st.sampled_from(edges))
        at = self._now()
        end = AttemptEnd(run["open"], at, "succeeded" if trigger == "finish" else "failed") \
            if run["state"] == "store_trace" and run["open"] else None
        number = run["attempt"] + 1 if trigger in OPENING else run["attempt"]
        start = AttemptStart(number, "run", at) if trigger in OPENING else None
        change = RunChange(status=ENDINGS[trigger], finished=True) if trigger in ENDINGS else None
        self.journal.record_transition(
            run_id, Transition(run["seq"] + 1, number, run["state"], dest, trigger, at),
            change=change, attempt_start=start, attempt_end=end)
        run.update(state=dest, attempt=number, seq=run["seq"] + 1)
        if end is not None:
            run["open"] = None
        if start is not None:
            run["open"] = number
        if change is not None:
            run["status"] = change.status

    @precondition(lambda self: self._running())
    @rule(data=st.data())
    def beat(self, data):
        run_id = data.draw(st.sampled_from(self._running()))
        self.journal.beat(run_id, at=self._now())

    @precondition(lambda self: self._running())
    @rule(data=st.data(), stale=st.booleans())
    def detect_crash(self, data, stale):
        """Crash detection is a compare-and-set on the state it saw: a stale view changes nothing."""
        run_id = data.draw(st.sampled_from(self._running()))
        run = self.runs[run_id]
        seen = "extract" if stale and run["state"] != "extract" else run["state"]
        moved = self.journal.mark_crashed(run_id, expected_state=seen, details={"reason": "model"}, at=self._now())
        assert moved == (seen == run["state"])
        if moved:
            run.update(status="crashed", state="crashed", seq=run["seq"] + 1, open=None)

    @precondition(lambda self: any(r["status"] in CONTINUABLE for r in self.runs.values()))
    @rule(data=st.data(), trigger=st.sampled_from(["recover", "resume_run"]), takers=st.integers(1, 3))
    def take_up(self, data, trigger, takers):
        """``takers`` processes take the ended run up at once: one wins, unless another run holds the lease."""
        run_id = data.draw(st.sampled_from(sorted(r for r, v in self.runs.items() if v["status"] in CONTINUABLE)))
        run = self.runs[run_id]
        at, number = self._now(), run["attempt"] + 1
        outcomes: list = []

        def take(pid: int) -> None:
            with Journal.open(self.url) as own:
                try:
                    own.reclaim_run(run_id, statuses=CONTINUABLE, owner=Owner("model-host", pid),
                                    opening=Transition(0, number, run["state"], "clean_folder", trigger, at),
                                    attempt_start=AttemptStart(number, "recover", at))
                    outcomes.append("won")
                except (RunNotReclaimable, LeaseHeld) as exc:
                    outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=take, args=(100 + i,)) for i in range(takers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        held = any(self.runs[r]["pipeline"] == run["pipeline"] for r in self._running())
        if held:
            assert outcomes == ["LeaseHeld"] * takers, outcomes
            return
        assert sorted(outcomes) == sorted(["won"] + ["RunNotReclaimable"] * (takers - 1)), outcomes
        run.update(status="running", state="clean_folder", attempt=number, seq=run["seq"] + 1, open=number)
        self.lease[run["pipeline"]] = run_id

    @precondition(lambda self: any(v["attempt"] for v in self.runs.values()))
    @rule(data=st.data())
    def store_trace(self, data):
        run_id, attempt = data.draw(st.sampled_from(sorted(
            (r, v["attempt"]) for r, v in self.runs.items() if v["attempt"])))
        if (run_id, attempt) in self.traced:
            return
        trace_id = self.journal.add_trace(run_id, attempt, self.runs[run_id]["pipeline"], "{}")
        self.traced.add((run_id, attempt))
        self.unshipped.add(trace_id)

    @precondition(lambda self: self.unshipped)
    @rule(data=st.data())
    def ship(self, data):
        shipped = data.draw(st.sets(st.sampled_from(sorted(self.unshipped)), min_size=1))
        outbox = self.journal.outbox("traces")
        outbox.assign_ship_load_id(sorted(shipped), f"load-{self._now()}")
        outbox.mark_shipped(sorted(shipped))
        self.unshipped -= shipped

    @precondition(lambda self: self.runs)
    @rule(data=st.data(), keep_failed=st.booleans())
    def prune(self, data, keep_failed):
        cutoff = data.draw(st.sampled_from(sorted(v["started_at"] for v in self.runs.values()))) + 0.5
        kept_statuses = ("running", *(CONTINUABLE if keep_failed else ()))
        doomed = {r for r, v in self.runs.items()
                  if v["started_at"] < cutoff and v["status"] not in kept_statuses and r not in self.lease.values()}
        result = self.journal.prune(cutoff, keep_failed=keep_failed, vacuum=False)
        assert result.runs == len(doomed)
        for run_id in doomed:
            del self.runs[run_id]
        gone = {trace for trace in self.traced if trace[0] in doomed}
        self.traced -= gone
        remaining = {item.id for name in PIPELINES for item in self.journal.outbox("traces").unshipped(self._pipeline(name))}
        self.unshipped &= remaining

    # what must hold after every step

    @invariant()
    def runs_are_as_modelled(self):
        for name in PIPELINES:
            journaled = {run.id: run for run in self.journal.list_runs(pipeline=self._pipeline(name), limit=None)}
            modelled = {r for r, v in self.runs.items() if v["pipeline"] == self._pipeline(name)}
            assert set(journaled) == modelled
            running = [r for r in journaled.values() if r.status == "running"]
            assert len(running) <= 1, f"two running runs of one pipeline: {running}"
            for run_id, run in journaled.items():
                assert (run.status, run.state, run.attempt) == tuple(self.runs[run_id][k] for k in ("status", "state", "attempt"))

    @invariant()
    def stories_keep_their_rules(self):
        for run_id, model in self.runs.items():
            story = self.journal.get_story(run_id)
            assert [t.seq for t in story.transitions] == list(range(1, model["seq"] + 1))
            for t in story.transitions:
                if t.source in FINAL_STATES:
                    assert t.trigger in ("recover", "resume_run"), f"{t.source} left by {t.trigger}"
            open_attempts = [a.number for a in story.attempts if a.outcome == "running"]
            assert open_attempts == ([model["open"]] if model["open"] else []), (open_attempts, model)
            assert all(a.finished_at is not None for a in story.attempts if a.outcome != "running")

    @invariant()
    def outbox_and_orphans(self):
        unshipped = {item.id for name in PIPELINES for item in self.journal.outbox("traces").unshipped(self._pipeline(name))}
        assert unshipped == self.unshipped
        with self.journal._read() as session:
            for table in ("attempts", "transitions", "traces"):
                orphans = session.rows(f"SELECT count(*) AS n FROM {table} WHERE run_id NOT IN (SELECT id FROM runs)")
                assert orphans[0]["n"] == 0, f"orphan {table} rows"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def model_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'model.sqlite'}"
    return request.getfixturevalue("fresh_pg_database")  # its prune spans the whole journal


def test_journal_against_its_model(model_url):
    JournalModel.url = model_url
    JournalModel.TestCase.settings = settings(
        max_examples=30, stateful_step_count=25, deadline=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    JournalModel.TestCase().runTest()
