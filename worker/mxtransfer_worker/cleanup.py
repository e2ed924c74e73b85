"""Abort the incomplete multipart uploads a transfer left behind (a worker killed for good, a copy that gave up
on a temporary error), and only those.

An upload is the transfer's when a checkpoint under its report prefix names it (same upload id and destination
key): every multipart copy with checkpoints writes one as soon as its upload exists. Uploads under the
destination prefix that no checkpoint names belong to someone else (another transfer, another tool) and are
left alone. A checkpoint written less than ``min_idle_seconds`` ago belongs to a copy that may still be running
(running copies rewrite theirs every 30 s) and is left alone too. For everything else the bucket's lifecycle
rule that aborts incomplete uploads (see the README) is the backstop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from .checkpoints import CheckpointStore, UnreadableCheckpoint
from .s3uri import S3Uri
from .shard import CHECKPOINTS_FOLDER

log = logging.getLogger(__name__)

#: Default idle time after which a checkpointed upload counts as abandoned: far above the 30 s between the
#: checkpoint writes of a running copy, and above AWS Batch's wait before a retried job attempt starts.
DEFAULT_MIN_IDLE_SECONDS = 3600.0


@dataclass
class UploadCleanup:
    """What ``abort_stale_uploads`` found: ``aborted`` and ``active`` uploads of the transfer as
    ``s3://bucket/key (upload id)`` strings, ``foreign`` the count of other uploads under the prefix (left
    alone), ``orphan_checkpoints`` the idle checkpoints whose upload no longer exists (deleted), and
    ``unreadable_checkpoints`` the objects under the checkpoint prefix that are not checkpoints this engine can
    read, with why (left alone: a copy that meets one starts over and replaces it)."""

    aborted: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    foreign: int = 0
    orphan_checkpoints: int = 0
    unreadable_checkpoints: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"aborted": len(self.aborted), "active": len(self.active), "foreign": self.foreign,
                "orphan_checkpoints": self.orphan_checkpoints,
                "unreadable_checkpoints": len(self.unreadable_checkpoints)}


def abort_stale_uploads(client, destination_uri: str, report_uri: str,
                        min_idle_seconds: float = DEFAULT_MIN_IDLE_SECONDS, dry_run: bool = False,
                        now: datetime | None = None) -> UploadCleanup:
    """Abort the incomplete multipart uploads under ``destination_uri`` (``s3://bucket/prefix/``) that a
    checkpoint of the transfer reporting to ``report_uri`` names and that were idle ``min_idle_seconds`` or more, and delete
    their checkpoints; with ``dry_run`` only report them."""
    destination = S3Uri.parse(destination_uri)
    store = CheckpointStore(client, str(S3Uri.parse(report_uri).join(CHECKPOINTS_FOLDER)))
    now = now or datetime.now(timezone.utc)
    ours, unreadable = {}, []
    for checkpoint, written in store.entries():
        if isinstance(checkpoint, UnreadableCheckpoint):
            log.warning("%s; left alone", checkpoint)
            unreadable.append(str(checkpoint))
        elif checkpoint.destination_bucket == destination.bucket and checkpoint.destination_key.startswith(destination.key):
            ours[(checkpoint.destination_key, checkpoint.upload_id)] = checkpoint, written
    result = UploadCleanup(unreadable_checkpoints=unreadable)
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=destination.bucket, Prefix=destination.key)
    for page in pages:
        for upload in page.get("Uploads", []):
            found = ours.pop((upload["Key"], upload["UploadId"]), None)
            if found is None:
                result.foreign += 1
                continue
            checkpoint, written = found
            name = f"s3://{destination.bucket}/{upload['Key']} ({upload['UploadId']})"
            if (now - written).total_seconds() < min_idle_seconds:
                result.active.append(name)
                continue
            result.aborted.append(name)
            if not dry_run:
                try:
                    client.abort_multipart_upload(Bucket=destination.bucket, Key=upload["Key"],
                                                  UploadId=upload["UploadId"])
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                        raise
                store.delete(checkpoint)
                store.drop_claim(checkpoint)  # split copies' completion claim, if any
    for checkpoint, written in ours.values():  # the upload is gone (completed, aborted or expired)
        if (now - written).total_seconds() >= min_idle_seconds:
            result.orphan_checkpoints += 1
            if not dry_run:
                store.delete(checkpoint)
    return result
