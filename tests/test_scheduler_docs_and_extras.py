"""The scheduler pages' complete examples are the files their tests run, and the integrations are extras:
importing runjournal, its runner or its CLI loads no scheduler, and pyproject declares each extra."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).parent.parent


@pytest.mark.parametrize(
    "page, example, language",
    [
        ("docs/dagster.md", "examples/dagster/shop_orders.py", "python"),
        ("docs/prefect.md", "examples/prefect/shop_orders.py", "python"),
        ("docs/kubernetes.md", "examples/kubernetes/cronjob.yaml", "yaml"),
        ("docs/kubernetes.md", "examples/kubernetes/Dockerfile", "dockerfile"),
        ("docs/airflow.md", "examples/airflow/dag_orders.py", "python"),
        ("docs/airflow.md", "examples/airflow/dag_orders_project.py", "python"),
        ("docs/airflow.md", "examples/airflow/orders_project/dlt.yml", "yaml"),
        ("docs/airflow.md", "examples/airflow/orders_project/shop_api.py", "python"),
    ],
)
def test_page_shows_the_example_its_test_runs(page, example, language):
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", (ROOT / page).read_text(), re.MULTILINE | re.DOTALL)
    assert (ROOT / example).read_text() in blocks


def test_core_imports_load_no_scheduler():
    code = (
        "import sys, runjournal, runjournal.cli\n"
        "from runjournal import runner\n"
        "import runjournal._scheduled, runjournal._labels, runjournal.airflow\n"
        "print(sorted(m for m in ('dagster', 'prefect', 'airflow') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_each_integration_is_an_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("dagster") for req in extras["dagster"])
    assert any(req.startswith("prefect") for req in extras["prefect"])
    assert any(req.startswith("apache-airflow") for req in extras["airflow"])
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [req for req in core if re.match(r"(dagster|prefect|apache-airflow)\b", req)]
