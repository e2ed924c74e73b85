"""The engine must run in a slim container without Airflow: importing any of its modules must not import it."""

import pkgutil
import subprocess
import sys

import mxtransfer_worker

BLOCK_AIRFLOW = """
import importlib.abc, sys
class BlockAirflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError(f"the engine imported {name}")
sys.meta_path.insert(0, BlockAirflow())
"""
IMPORT_ENGINE = """
import pkgutil
import mxtransfer_worker
for module in pkgutil.walk_packages(mxtransfer_worker.__path__, "mxtransfer_worker."):
    if module.name != "mxtransfer_worker.__main__":
        __import__(module.name)
print("imported", len(sys.modules))
"""


def test_engine_modules_import_without_airflow():
    modules = [m.name for m in pkgutil.walk_packages(mxtransfer_worker.__path__, "mxtransfer_worker.")]
    assert "mxtransfer_worker.copier" in modules and "mxtransfer_worker.cli" in modules
    completed = subprocess.run([sys.executable, "-c", BLOCK_AIRFLOW + IMPORT_ENGINE], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_the_guard_catches_an_airflow_import():
    completed = subprocess.run([sys.executable, "-c", BLOCK_AIRFLOW + "\nimport airflow\n"],
                               capture_output=True, text=True)
    assert completed.returncode != 0 and "the engine imported airflow" in completed.stderr
