"""``python -m demo``: run the aggregation DAG end to end against moto's S3 server on 127.0.0.1.

Starts the server (dummy credentials, explicit endpoint), a throwaway Airflow (temporary AIRFLOW_HOME, sqlite),
seeds three provider buckets with a few hundred objects (odd keys, one 40 MiB object copied by parts), runs
``mxtransfer_aggregation`` with ``dag.test()`` on the ``local`` backend, prints the summary, checks every
source object at the destination (size, SHA-256, metadata), then runs the DAG again to show that nothing is
copied twice. Exits 1 if the DAG fails or anything is missing or different.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20
#: Small multipart settings, so that the 40 MiB object takes the multipart path (5 parts of 8 MiB).
RUN_CONF = {"full_listing": True, "multipart_threshold_mib": 16, "part_size_mib": 8}


def configure_environment(home: Path) -> None:
    """Dummy AWS credentials, Airflow in ``home`` with sqlite and ``dags/``, the local compute backend.
    Must run before Airflow is imported."""
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
        # a proxy in the environment (pip's) cannot reach the local S3 server (lower case wins in urllib)
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "MXTRANSFER_COMPUTE": "local",
        "MXTRANSFER_PROVIDERS_FILE": str(home / "providers.yaml"), "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws"}',
    })
    os.environ.pop("AWS_PROFILE", None)


def start_s3_server():
    """moto's S3 server on a free 127.0.0.1 port; sets ``AWS_ENDPOINT_URL`` to it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    return server


@contextlib.contextmanager
def output_to(path: Path):
    """Send everything written to stdout and stderr (Airflow's task logs included) to ``path`` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_dag(dag, s3, config: dict, log: Path):
    """One ``dag.test()`` run; returns its state and the providers' lines of its ``summary.json``."""
    from mxtransfer_worker.s3uri import S3Uri

    started = time.monotonic()
    with output_to(log):
        run = dag.test(run_conf=RUN_CONF)
    print(f"DAG run {run.run_id}: {run.state} in {time.monotonic() - started:.1f} s")
    if run.state != "success":
        return run.state, []
    reports = S3Uri.parse(config["work"]["reports"])
    key = f"{reports.key}{dag.dag_id}/{run.run_id}/summary.json"
    return run.state, json.loads(s3.get_object(Bucket=reports.bucket, Key=key)["Body"].read())["providers"]


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="mxtransfer-demo-"))
    configure_environment(home)
    server = start_s3_server()
    try:
        import yaml

        from demo.scenario import BIG_KEY, copy_message, format_summary, seed, verify
        from mxtransfer_worker.s3client import make_s3_client

        s3 = make_s3_client()
        print(f"S3 endpoint {os.environ['AWS_ENDPOINT_URL']} (moto), Airflow home {home}")
        started = time.monotonic()
        config = seed(s3)
        (home / "providers.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
        for entry in config["providers"]:
            os.environ[f"AIRFLOW_CONN_{entry['aws_conn_id'].upper()}"] = '{"conn_type": "aws"}'
        print(f"seeded {len(config['providers'])} provider buckets in {time.monotonic() - started:.1f} s")

        from airflow.models.pool import Pool
        from airflow.utils.db import resetdb

        log = home / "airflow.log"
        with output_to(log):
            resetdb()
            Pool.create_or_update_pool("mxtransfer_transfers", slots=2, description="mxtransfer demo",
                                       include_deferred=True)
        print(f"Airflow's own output goes to {log}")
        sys.path.insert(0, str(REPO / "dags"))
        from mxtransfer_aggregation import aggregation_dag

        print("\n== first run: copy everything (full listing) ==")
        state, lines = run_dag(aggregation_dag, s3, config, log)
        if lines:
            print(format_summary(lines))
            print(f"{BIG_KEY}: {copy_message(s3, lines[0]['report'], BIG_KEY)}")
        checked, problems = verify(s3, config)
        print(f"\nverified {checked} objects at the destination (size, SHA-256, metadata): "
              f"{len(problems)} problems")
        for problem in problems[:20]:
            print("  " + problem)

        print("\n== second run: nothing new to copy ==")
        second_state, second_lines = run_dag(aggregation_dag, s3, config, log)
        if second_lines:
            print(format_summary(second_lines))
            print("(identical: left out by the inventory, same size and ETag at the destination; skipped: the "
                  "copy engine found the destination already equal)")
        copied_again = sum(line["copied"] for line in second_lines)
        ok = state == second_state == "success" and checked and not problems and not copied_again
        print(f"\ndemo {'OK' if ok else 'FAILED'}")
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
