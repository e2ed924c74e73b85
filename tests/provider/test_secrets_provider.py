"""No credential of the Airflow connection reaches XCom, task logs or the failure message of a transfer.

The ``aws_default`` connection carries real-looking fake credentials (an ``AKIA`` key id, a secret and a
session token; moto's server accepts any) and a transfer with a missing object runs through ``dag.test()``, so
the failure path (the sensor's error naming the failed rows) runs too.
"""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import text

from test_copy_and_sensor import _dag, transfer_setup  # noqa: F401 - the fixture is shared

KEY_ID = "AKIAZ7QXMXTRANSFER43"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYmxtransfer2"
TOKEN = "FwoGZXIvYXdzEMXTRANSFERairflowTokenQeX9rZ2//////////wEaDMxtRaNsFeRsessionTOKEN+q9="

pytestmark = pytest.mark.usefixtures("airflow_db", "aws_connection")


def test_connection_credentials_stay_out_of_xcom_logs_and_errors(s3_server, transfer_setup, monkeypatch,  # noqa: F811
                                                                  caplog, capfd):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": KEY_ID, "password": SECRET,
        "extra": {"endpoint_url": s3_server, "region_name": "us-east-1", "aws_session_token": TOKEN}}))
    from airflow_provider_mxtransfer.hooks.s3copy import S3CopyHook

    credentials = S3CopyHook().get_session().get_credentials()
    assert (credentials.access_key, credentials.token) == (KEY_ID, TOKEN)  # what the transfer signs with
    caplog.set_level(logging.INFO)
    setup = transfer_setup(missing=True, shard_count=1)
    conf = {name: setup[name] for name in ("manifest_uri", "destination", "report_root", "source_prefix",
                                           "shard_count")}
    run = _dag("mxt_local").test(run_conf=conf)
    assert run.state == "failed"

    from airflow.utils.session import create_session

    with create_session() as session:
        values = session.execute(text("SELECT value FROM xcom WHERE dag_id = :dag AND run_id = :run"),
                                 {"dag": run.dag_id, "run": run.run_id}).scalars().all()
    xcoms = "\n".join(value.decode() if isinstance(value, bytes) else str(value) for value in values)
    assert "report_uri" in xcoms  # the copy task's transfer is there
    output = capfd.readouterr()
    logs = caplog.text + output.out + output.err
    assert "media/gone.mov" in logs and "NoSuchKey" in logs  # the failure was reported
    for secret in (KEY_ID, SECRET, TOKEN, TOKEN[:24]):
        assert secret not in xcoms, "XCom holds a credential"
        assert secret not in logs, "the logs hold a credential"
