"""A throw-away Airflow home per test process and the DAG bundle setting, shared by the test folders that run
Airflow (``tests/airflow_env.py`` for the provider's test DAGs, ``tests/dags/conftest.py`` for ``dags/``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def use_temporary_airflow_home(stem: str, dags_folder: Path, **settings: str) -> str:
    """Point Airflow at a new home with a sqlite database and ``dags_folder`` (plus ``settings``, more
    ``AIRFLOW__...`` variables); returns the home. It applies if Airflow is not imported yet. xdist workers
    inherit the controller's environment, so it always overwrites."""
    home = tempfile.mkdtemp(prefix=f"mxtransfer-{stem}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
    os.environ.update({
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        **settings,
    })
    return home


def use_dag_bundle(monkeypatch, name: str, path: Path) -> None:
    """Make ``path`` the only DAG bundle that ``dag.test()`` reads, whatever folder Airflow was imported with."""
    bundle = {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
              "kwargs": {"path": str(path), "refresh_interval": 0}}
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
