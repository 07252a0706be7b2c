"""`runjournal graph`: the state machine the engine runs, as Mermaid."""

from __future__ import annotations

from runjournal._machine import STATES, TRANSITIONS

from ._cli_support import assert_no_traceback, cli


def test_graph_is_the_machine_as_mermaid(tmp_path):
    for args in (("graph",), ("graph", "--format", "mermaid")):
        result = cli(*args, url=f"sqlite:///{tmp_path / 'unused.sqlite'}")
        assert result.returncode == 0, result.stderr
        assert "stateDiagram" in result.stdout
        for state in STATES:
            assert f'state "{state}" as {state}' in result.stdout
        for trigger in {t["trigger"] for t in TRANSITIONS}:
            assert f": {trigger}" in result.stdout or f"| {trigger}" in result.stdout
    assert not (tmp_path / "unused.sqlite").exists()  # drawing needs no journal


def test_graph_other_formats_are_usage_errors():
    result = cli("graph", "--format", "dot")
    assert result.returncode == 2
    assert "--format" in result.stderr and "mermaid" in result.stderr
    assert result.stdout == ""
    assert_no_traceback(result)
