"""The worker image: its Dockerfile lints clean, its dependencies are pinned, and the engine runs with only
those dependencies installed (a fresh virtual environment standing in for the container, since no Docker
engine runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mxtransfer_worker.manifest import ManifestRow, upload_manifest

WORKER = Path(__file__).resolve().parents[2] / "worker"
BIN = Path(sys.executable).parent


def test_dockerfile_passes_hadolint():
    completed = subprocess.run([str(BIN / "hadolint"), str(WORKER / "Dockerfile")], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_dockerfile_runs_as_non_root_without_airflow():
    dockerfile = (WORKER / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert "apache-airflow" not in dockerfile and "pip install" in dockerfile


def test_requirements_are_pinned_with_hashes_and_exclude_airflow():
    text = (WORKER / "requirements.txt").read_text()
    requirements = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE)
    names = {name.lower() for name, _ in requirements}
    assert {"boto3", "botocore", "s3transfer"} <= names
    assert not any("airflow" in name for name in names)
    assert text.count("--hash=sha256:") >= len(requirements)
    unpinned = [line for line in text.splitlines() if re.match(r"^[A-Za-z]", line) and "==" not in line]
    assert unpinned == []


def test_engine_copies_in_an_environment_with_only_the_image_requirements(tmp_path, s3_server, s3, make_bucket):
    uv = shutil.which("uv", path=str(BIN)) or pytest.fail("uv is missing from the test environment")
    venv = tmp_path / "image-venv"
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "-p", str(venv / "bin" / "python"), "--require-hashes",
                    "-r", str(WORKER / "requirements.txt")], check=True)
    source, destination = make_bucket("src"), make_bucket("dst")
    s3.put_object(Bucket=source, Key="clip one.mov", Body=b"frames")
    upload_manifest(s3, [ManifestRow(source, "clip one.mov")], f"s3://{source}/m.csv")
    environment = {**os.environ, "PYTHONPATH": str(WORKER), "AWS_ENDPOINT_URL": s3_server,
                   "AWS_BATCH_JOB_ARRAY_INDEX": "0"}
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "mxtransfer_worker", "copy", "--manifest", f"s3://{source}/m.csv",
         "--destination", f"s3://{destination}/in/", "--report", f"s3://{source}/report/", "--no-copy-annotations"],
        capture_output=True, text=True, env=environment, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert s3.get_object(Bucket=destination, Key="in/clip one.mov")["Body"].read() == b"frames"
    installed = subprocess.run([uv, "pip", "list", "-p", str(venv / "bin" / "python")], capture_output=True,
                               text=True, check=True).stdout.lower()
    assert "boto3" in installed and "airflow" not in installed
