"""AbortStaleUploadsOperator against moto's server: it aborts the transfer's idle uploads and leaves others'."""

from __future__ import annotations

import pytest

from airflow_provider_mxtransfer.operators.cleanup import AbortStaleUploadsOperator
from mxtransfer_worker.checkpoints import Checkpoint, CheckpointStore

pytestmark = pytest.mark.usefixtures("airflow_db", "aws_connection")


def test_operator_aborts_the_transfers_uploads_only(s3, make_bucket):
    destination, work = make_bucket("dst"), make_bucket("work")
    transfer = {"transfer_id": "t-1", "destination": f"s3://{destination}/agg/",
                "report_uri": f"s3://{work}/mxtransfer-reports/t-1/"}
    ours = s3.create_multipart_upload(Bucket=destination, Key="agg/a.mxf")["UploadId"]
    CheckpointStore(s3, transfer["report_uri"] + "checkpoints/").save(
        Checkpoint("src", "a.mxf", None, '"e"', 10, destination, "agg/a.mxf", ours, 5 * 2**20))
    theirs = s3.create_multipart_upload(Bucket=destination, Key="agg/b.mxf")["UploadId"]

    dry = AbortStaleUploadsOperator(task_id="clean", transfer=transfer, min_idle_seconds=0, dry_run=True)
    assert dry.execute({}) == {"aborted": 1, "active": 0, "foreign": 1, "orphan_checkpoints": 0,
                               "unreadable_checkpoints": 0}
    assert len(s3.list_multipart_uploads(Bucket=destination)["Uploads"]) == 2
    operator = AbortStaleUploadsOperator(task_id="clean", transfer=transfer, min_idle_seconds=0)
    assert operator.execute({}) == {"aborted": 1, "active": 0, "foreign": 1, "orphan_checkpoints": 0,
                                    "unreadable_checkpoints": 0}
    assert [upload["UploadId"] for upload in s3.list_multipart_uploads(Bucket=destination)["Uploads"]] == [theirs]
