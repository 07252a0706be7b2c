"""`runjournal serve` over an SQLite journal: the overview puts crashed and failed pipelines first, the
runs list filters and pages, a run's page draws its timeline and its path through the machine, the
JSON is the CLI's, every journal string is escaped, and nothing is written."""

from __future__ import annotations

import hashlib
import html
import json
import re
import urllib.parse
from pathlib import Path

import pytest

from tests._cli_support import cli_json
from tests._serve_support import EVIL_ERROR, EVIL_PIPELINE, MARKUP, fleet, get, served


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "journal.sqlite"
    url = f"sqlite:///{path}"
    runs = fleet(url)
    with served(url) as base:
        yield base, runs, url, path


def _rows(body: str, table: str) -> list[str]:
    section = body.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)[1:]


def test_overview_puts_crashed_then_failed_pipelines_first(site):
    base, runs, _, _ = site
    page = get(base + "/")
    assert page.status == 200
    order = [html.unescape(name) for name in re.findall(r'data-pipeline="([^"]*)"', page.body)]
    assert order == ["payments", EVIL_PIPELINE, "orders", "inventory", "customers"]
    rows = dict(zip(order, _rows(page.body, "pipelines")))
    assert "crashed" in rows["payments"] and "heartbeat stale" in rows["payments"] and runs.crashed[:12] in rows["payments"]
    assert "never" in rows["payments"] and ">1<" in rows["payments"]  # never succeeded, failing streak 1
    assert "failed" in rows["orders"] and " ago" in rows["orders"] and runs.failed[:12] in rows["orders"]
    assert re.search(r'class="num">2</td>\s*<td class="error">PipelineStepFailed', rows["orders"])  # 2 runs in 24 h
    assert "running" in rows["inventory"]
    # a live run: the page refreshes itself
    assert '<meta http-equiv="refresh"' in page.body
    failing = get(base + "/?failing=1")
    assert [html.unescape(n) for n in re.findall(r'data-pipeline="([^"]*)"', failing.body)] == [
        "payments", EVIL_PIPELINE, "orders"]
    assert re.findall(r'data-pipeline="([^"]*)"', get(base + "/?failing=1&pipeline=ORD").body) == ["orders"]
    assert "No pipeline matches" in get(base + "/?pipeline=nothing-like-it").body


def test_runs_list_filters_by_pipeline_status_and_since_and_pages(site):
    base, runs, _, _ = site
    crashed = get(base + "/runs?status=crashed")
    assert [r for r in re.findall(r'href="/runs/([0-9a-f]+)"', crashed.body)] == [runs.crashed]
    orders = get(base + "/runs?pipeline=orders")
    assert re.findall(r'href="/runs/([0-9a-f]+)"', orders.body) == [runs.failed, runs.done]
    recent = get(base + "/runs?since=4m")
    assert runs.done not in recent.body and runs.failed not in recent.body and runs.evil in recent.body
    first = json.loads(get(base + "/api/runs?limit=2").body)["runs"]
    second = json.loads(get(base + f"/api/runs?limit=2&before={first[-1]['id']}").body)["runs"]
    everything = json.loads(get(base + "/api/runs?limit=0").body)["runs"]
    assert [r["id"] for r in first + second] == [r["id"] for r in everything[:4]]
    labeled = get(base + "/runs?label=airflow.dag_id%3Dcustomers_daily")
    assert re.findall(r'href="/runs/([0-9a-f]+)"', labeled.body) == [runs.labeled]
    assert "airflow.dag_id=customers_daily" in labeled.body  # the run's labels are shown, and kept in the form
    both = get(base + "/api/runs?label=airflow.dag_id%3Dcustomers_daily&label=airflow.task_id%3Dload")
    assert [r["id"] for r in json.loads(both.body)["runs"]] == [runs.labeled]
    assert json.loads(get(base + "/api/runs?label=airflow.dag_id%3Dother").body)["runs"] == []
    assert get(base + "/runs?label=no-equals-sign").status == 400
    bad = get(base + "/runs?status=exploded")
    assert bad.status == 400 and "exploded" in bad.body and "crashed" in bad.body
    assert get(base + "/runs?since=yesterdayish").status == 400


def test_run_page_draws_the_timeline_the_path_and_the_attempts(site):
    base, runs, _, _ = site
    page = get(base + f"/runs/{runs.failed}")
    assert page.status == 200
    gantt = page.body.split('id="gantt"', 1)[1].split("</svg>", 1)[0]
    assert "attempt 1" in gantt and "attempt 2" in gantt
    bar_states = re.findall(r'data-state="([a-z_]+)"', gantt)
    assert bar_states == ["clean_folder", "sync", "finalize_pending", "extract", "store_trace", "retry_wait",
                          "extract", "store_trace"]
    machine = page.body.split('id="machine"', 1)[1].split("</svg>", 1)[0]
    taken = set(re.findall(r'class="edge taken" data-source="([a-z_]+)" data-dest="([a-z_]+)"', machine))
    assert ("extract", "store_trace") in taken and ("store_trace", "retry_wait") in taken
    assert ("retry_wait", "extract") in taken and ("store_trace", "failed") in taken
    assert ("normalize", "load") not in taken
    assert re.search(r'class="node visited current failed" data-state="failed"', machine)
    assert "ConnectionError" in page.body and "api.example.com timed out" in page.body
    assert "not shipped" in page.body and "destination refused the trace" in page.body
    assert '<meta http-equiv="refresh"' not in page.body  # an ended run does not refresh


def test_a_dead_run_is_shown_crashed_where_it_died(site):
    base, runs, _, _ = site
    page = get(base + f"/runs/{runs.crashed}")
    assert 'id="died"' in page.body and "Crashed in <code>sync</code>" in page.body
    assert 'id="death"' in page.body and "died in sync" in page.body
    machine = page.body.split('id="machine"', 1)[1]
    assert 'class="edge taken presumed" data-source="sync" data-dest="crashed"' in machine
    assert 'data-state="crashed"' in machine and "current crashed" in machine
    live = get(base + f"/runs/{runs.running}")
    assert '<meta http-equiv="refresh"' in live.body and "Running in <code>sync</code>" in live.body


def test_every_journal_string_is_escaped(site):
    base, runs, _, _ = site
    pages = ["/", "/runs", f"/runs/{runs.evil}", "/runs?pipeline=" + urllib.parse.quote(EVIL_PIPELINE)]
    for path in pages:
        body = get(base + path).body
        assert not any(tag in body for tag in MARKUP), path
        assert html.escape(EVIL_PIPELINE, quote=False) in body.replace("&#34;", '"'), path
    run_page = get(base + f"/runs/{runs.evil}").body
    assert html.escape(EVIL_ERROR, quote=False) in run_page.replace("&#34;", '"').replace("&#39;", "'")
    # and no script could run even if one slipped through
    assert "script-src" not in get(base + "/").headers["content-security-policy"]
    assert "default-src 'none'" in get(base + "/").headers["content-security-policy"]


def test_json_endpoints_are_the_clis(site):
    base, runs, url, _ = site

    def steady(document):  # a presumed crash's evidence ages by the second
        text = re.sub(r'"(heartbeat_age_s|host_heard_from_s_ago)": [0-9.]+', r'"\1": 0', json.dumps(document, sort_keys=True))
        return json.loads(text)

    assert steady(json.loads(get(base + "/api/runs?limit=20").body)) == steady(cli_json("runs", url=url))
    for run_id in (runs.failed, runs.crashed):
        served_story = json.loads(get(base + f"/api/runs/{run_id[:10]}").body)
        assert steady(served_story) == steady(cli_json("show", run_id, url=url))
    missing = get(base + "/api/runs/ffffffff")
    assert missing.status == 404 and "ffffffff" in json.loads(missing.body)["error"]
    assert get(base + "/runs/ffffffff").status == 404


def test_serving_writes_nothing(site):
    base, runs, _, path = site
    files = sorted(Path(path).parent.glob("journal.sqlite*"))

    def digest():
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}

    before = digest()
    for target in ("/", "/runs", f"/runs/{runs.crashed}", "/metrics", "/api/runs", f"/api/runs/{runs.failed}"):
        assert get(base + target).status == 200
    assert digest() == before
