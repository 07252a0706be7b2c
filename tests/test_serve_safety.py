"""`runjournal serve` binds to loopback unless given a token, asks every request for the token when it
has one, names the extra it needs when it is missing, and loads no dlt."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests._cli_support import cli, create_empty
from tests._serve_support import fleet, get, served

TOKEN = "s3cret-token-for-tests"


def test_binding_beyond_loopback_needs_a_token(journal_url):
    refused = cli("serve", "--host", "0.0.0.0", "--port", "1", url=journal_url)
    assert refused.returncode == 2
    assert "--host 0.0.0.0 is not a loopback address" in refused.stderr and "--token" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_with_a_token_every_request_must_carry_it(journal_url):
    runs = fleet(journal_url)
    with served(journal_url, env={"RUNJOURNAL_SERVE_TOKEN": TOKEN}) as base:
        for path in ("/", "/runs", f"/runs/{runs.failed}", "/metrics", "/api/runs"):
            denied = get(base + path)
            assert denied.status == 401 and "Basic" in denied.headers["www-authenticate"], path
            assert get(base + path, token="wrong").status == 401
            assert get(base + path, basic="wrong").status == 401
        page = get(base + "/", token=TOKEN)
        assert page.status == 200 and "orders" in page.body
        assert get(base + "/metrics", basic=TOKEN).status == 200  # a browser's basic auth, any user name
        assert TOKEN not in page.body


def test_a_missing_web_extra_is_named(journal_url):
    create_empty(journal_url)
    script = textwrap.dedent("""
        import sys
        sys.modules["uvicorn"] = None  # as if runjournal[web] were not installed
        from runjournal.cli import main
        main(["serve", "--port", "1"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          env={"RUNJOURNAL_URL": journal_url, "PATH": ""})
    assert done.returncode == 2
    assert "pip install 'runjournal[web]'" in done.stderr and "uvicorn" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_pages_load_no_dlt(journal_url):
    runs = fleet(journal_url)
    script = textwrap.dedent(f"""
        import sys
        from starlette.testclient import TestClient
        from runjournal.cli import main  # the command line, `serve` registered
        from runjournal.web import create_app
        client = TestClient(create_app({journal_url!r}))
        for path in ("/", "/runs", "/runs/{runs.crashed}", "/metrics", "/api/runs", "/api/runs/{runs.failed}"):
            assert client.get(path).status_code == 200, path
        print("DLT", sorted(m for m in sys.modules if m == "dlt" or m.startswith("dlt.")))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "DLT []" in done.stdout


def test_an_unreachable_journal_is_a_503_naming_it_without_its_password(tmp_path):
    from tests._serve_support import free_port

    url = f"postgresql://reader:hunter2-secret@127.0.0.1:{free_port()}/journal"  # nothing listens there
    with served(url) as base:
        page, metrics, api = get(base + "/"), get(base + "/metrics"), get(base + "/api/runs")
    assert page.status == metrics.status == api.status == 503
    assert "unreachable" in page.body and "unreachable" in metrics.body and "127.0.0.1" in metrics.body
    assert metrics.headers["content-type"].startswith("text/plain") and "error" in api.body
    assert "hunter2-secret" not in page.body + metrics.body + api.body
