#!/usr/bin/env bash
# Build the Airflow 3 environment the tests in tests_airflow/ run in: Airflow's dependencies are
# many and pinned, so they live apart from the project's own .venv.
#   bash tests_airflow/setup_venv.sh [VENV]        (default: .venv-airflow at the repository's root)
# Installs this checkout non-editable with its `airflow` extra, so the test also proves the package
# ships runjournal.airflow, under tests_airflow/constraints.txt (Airflow's closure, pinned), plus pytest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/.venv-airflow}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -c "$root/tests_airflow/constraints.txt" "$root[airflow]" "pytest>=8" "pytest-timeout>=2.3"
# a reinstall of an unchanged version would keep the old files: always take this checkout's
"$venv/bin/pip" install -q --no-deps --force-reinstall "$root"
"$venv/bin/pip" check
