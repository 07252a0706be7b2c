"""The run state machine, declared as data: states, and transitions with their from-states, to-states and guards.

The engine drives it and the diagram (`runjournal graph`) is drawn from it, so the picture
is always the machine that runs. Every edge goes through the model's ``journal`` callback
before the state changes: a transition that cannot be committed does not happen.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from runjournal.journal import FINISHED_STATUSES

#: Where each step's work is done, in the order a run walks them.
WORK_STATES = ("clean_folder", "sync", "finalize_pending", "extract", "normalize", "load")
#: The step (as the retry policy and dlt's traces name it) whose work each state does.
STEP_OF_STATE = {**{state: state for state in WORK_STATES}, "finalize_pending": "load"}
#: States a step that failed can be retried from, after ``retry_wait``.
RETRYABLE_STATES = ("sync", "finalize_pending", "extract", "normalize", "load")
#: States in which a run's process stops driving the machine: a run's state and status agree there.
FINAL_STATES = FINISHED_STATUSES
STATES = ("created", *WORK_STATES, "store_trace", "retry_wait", *FINAL_STATES)
#: States a live process may hold; a run found in one of them with its process gone has crashed.
LIVE_STATES = tuple(s for s in STATES if s not in FINAL_STATES)
#: Final states a run can be taken up again from, by `recover` or `resume`, as a new attempt.
CONTINUABLE_STATES = ("crashed", "interrupted", "failed")

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start", "source": "created", "dest": "clean_folder"},
    {"trigger": "advance", "source": "clean_folder", "dest": "sync"},
    {"trigger": "advance", "source": "sync", "dest": "finalize_pending"},
    # Nothing was pending: go on to the caller's data, or end a finalize-only call.
    {"trigger": "advance", "source": "finalize_pending", "dest": "extract", "unless": "finalize_only"},
    {"trigger": "advance", "source": "finalize_pending", "dest": "store_trace", "conditions": "finalize_only"},
    {"trigger": "advance", "source": "extract", "dest": "normalize"},
    {"trigger": "advance", "source": "normalize", "dest": "load"},
    # An attempt ends, well or badly, in store_trace.
    {"trigger": "attempt_done", "source": ["finalize_pending", "load"], "dest": "store_trace"},
    {"trigger": "attempt_failed", "source": list(WORK_STATES), "dest": "store_trace"},
    # A recovery only finalizes what the run left behind; a run that loaded its data is done.
    {"trigger": "finish", "source": "store_trace", "dest": "recovered", "conditions": "recovering"},
    {"trigger": "finish", "source": "store_trace", "dest": "done", "unless": "recovering"},
    # Pending packages were finalized; the caller's data is the next attempt.
    {"trigger": "continue_run", "source": "store_trace", "dest": "extract", "unless": "finalize_only"},
    {"trigger": "retry", "source": "store_trace", "dest": "retry_wait"},
    *(
        {"trigger": "resume", "source": "retry_wait", "dest": state, "conditions": "is_target"}
        for state in RETRYABLE_STATES
    ),
    {"trigger": "give_up", "source": ["store_trace", "retry_wait"], "dest": "failed"},
    {"trigger": "halt", "source": ["store_trace", "retry_wait"], "dest": "interrupted"},
    # Journaled from the outside, by crash detection, for a run whose process is gone.
    {"trigger": "crash", "source": list(LIVE_STATES), "dest": "crashed"},
    # A new attempt of an ended run, in a new process: finalize what it left (recover), or go on (resume).
    {"trigger": "recover", "source": list(CONTINUABLE_STATES), "dest": "clean_folder"},
    {"trigger": "resume_run", "source": list(CONTINUABLE_STATES), "dest": "clean_folder"},
]


class MachineModel:
    """What the machine needs from the object it drives; the engine's run model fills it in."""

    state: str

    def finalize_only(self, event) -> bool:
        raise NotImplementedError

    def recovering(self, event) -> bool:
        raise NotImplementedError

    def is_target(self, event) -> bool:
        return event.kwargs.get("target") == event.transition.dest

    def journal(self, event) -> None:
        raise NotImplementedError


def build_machine(model: Any, *, initial: str = "created", machine_cls: type = Machine) -> Machine:
    return machine_cls(
        model=model,
        states=list(STATES),
        transitions=[dict(t) for t in TRANSITIONS],
        initial=initial,
        auto_transitions=False,
        send_event=True,
        before_state_change="journal",
    )


def mermaid_diagram() -> str:
    """The machine as a Mermaid state diagram."""
    from transitions.extensions.diagrams import GraphMachine

    class _Drawing(MachineModel):
        def finalize_only(self, event) -> bool:  # pragma: no cover - never triggered
            return False

        def recovering(self, event) -> bool:  # pragma: no cover - never triggered
            return False

        def journal(self, event) -> None:  # pragma: no cover - never triggered
            pass

    model = _Drawing()
    GraphMachine(
        model=model,
        states=list(STATES),
        transitions=[dict(t) for t in TRANSITIONS],
        initial="created",
        auto_transitions=False,
        show_conditions=True,
        graph_engine="mermaid",
    )
    return model.get_graph().draw(None)
