"""Copy one large object with several workers of the array job: each shard of a group copies its run of parts
(planned by ``sharding``) into one shared multipart upload, and the last to finish completes it.

- The upload: a worker that finds no valid checkpoint creates an upload and writes its checkpoint with a
  conditional write (``If-None-Match``), so exactly one upload wins; a worker that loses aborts its own upload
  and joins the winner's. Every worker resumes from that checkpoint as ``ObjectCopier`` does (checked against
  the source's ETag and size, with the parts as ``ListParts`` has them), so a killed worker's retry copies only
  the parts of its run that are missing.
- Completion: after its parts, a worker lists the upload's parts (``ListParts`` is the truth). If all are there
  it claims the completion (a conditional write next to the checkpoint: S3 answers a second completion of an
  upload with success too, so two workers finishing together must not both complete and report), completes
  the upload with the source's full-object checksum and verifies the copy, as ``ObjectCopier`` does;
  otherwise some worker is still copying and will find them all when it finishes, so it leaves (as it does when
  ``ListParts`` answers ``NoSuchUpload``: another worker completed meanwhile). A claimant that dies before
  completing keeps its claim, and its retry (the same shard) completes.
- Report rows: the completing worker reports the object with all its bytes; the group's first member reports
  a skip (the destination already matched); every worker reports its own failures; a worker that only copied
  its parts reports nothing (it logs them), so the merged report has one row per object.

A worker whose upload was completed by another between its destination check and its checkpoint read starts a
new upload that nobody completes: the next run finds the destination matching and aborts it (and a lifecycle
rule aborts incomplete uploads anyway).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from .checkpoints import Checkpoint, CheckpointStore
from .copier import SKIPPED, SUCCEEDED, CopyResult, Interrupted, ObjectCopier, StopSignal, _completed_part
from .errors import CopyError
from .manifest import ManifestRow
from .options import CopyOptions
from .parts import PartPlan
from .runner import copy_client_for
from .sharding import PartSlice

log = logging.getLogger(__name__)
#: Conditional-create rounds before giving up on agreeing on an upload (each loser joins the winner's upload).
_CREATE_ATTEMPTS = 3


def copy_slice(client, work: PartSlice, options: CopyOptions, checkpoints: CheckpointStore,
               stop: StopSignal | None = None, paced: bool = False) -> CopyResult | None:
    """Copy the parts of ``work`` (and complete the upload if they were the last); the result to report, or
    None when this worker has nothing to report (see the module's docstring). ``paced``: as for ``copy_rows``."""
    with ThreadPoolExecutor(options.part_concurrency, thread_name_prefix="mxtransfer-split") as part_pool:
        copier = _SliceCopier(client, options, part_pool, checkpoints, stop, work, copy_client_for(client, options),
                              paced)
        result = copier.copy(work.row)
    if (result.status == SUCCEEDED and not copier.completed_here) or (result.status == SKIPPED and work.member):
        log.info("s3://%s/%s: shard %d of the group %d-%d: %s", work.row.bucket, work.row.key, work.member,
                 work.group_start, work.group_start + work.group_size - 1, result.message)
        return None
    return result


class _SliceCopier(ObjectCopier):
    """An ``ObjectCopier`` whose multipart copy is one slice of a shared upload, completed if it is the last."""

    def __init__(self, client, options: CopyOptions, part_executor, checkpoints: CheckpointStore,
                 stop: StopSignal | None, work: PartSlice, copy_client, paced: bool) -> None:
        super().__init__(client, options, part_executor, checkpoints, stop, copy_client, paced)
        self.work = work
        self.completed_here = False

    def _copy_multipart(self, row: ManifestRow, source: dict, destination_key: str,
                        condition: dict) -> tuple[str, dict | None]:
        work = self.work
        if source["ContentLength"] != row.size:
            raise CopyError("SourceChanged", f"{self._source_uri(row)} has {source['ContentLength']:,} bytes, the "
                            f"manifest says {row.size:,}: its parts were split between shards by the manifest's "
                            "size; make the manifest again")
        checkpoint, note = self._shared_upload(row, source, destination_key)
        runs = f"parts {work.first_part}-{work.last_part} of {work.part_count}"
        try:
            self._copy_parts(row, source, checkpoint, range(work.first_part, work.last_part + 1))
        except Interrupted as interruption:
            raise Interrupted(f"{runs}: {interruption.message}; the shared upload is kept and the next attempt "
                              f"resumes it from the checkpoint {self.checkpoints.location(row, checkpoint.destination_bucket, destination_key)}") from None
        try:
            listed = self._listed_parts(destination_key, checkpoint.upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            return f"{runs} copied{note}; the upload was completed by another worker meanwhile", None
        if len(listed) < work.part_count:
            return (f"{runs} copied{note}; {len(listed)} of the upload's parts are there, the last worker completes "
                    "it", None)
        if not self.checkpoints.claim_completion(checkpoint, f"shard {work.group_start + work.member}"):
            return f"{runs} copied{note}; another worker that found every part completes the upload", None
        parts = sorted((_completed_part(part["PartNumber"], part) for part in listed), key=lambda p: p["PartNumber"])
        completed = self._complete(source, checkpoint, parts, condition)
        self.completed_here = True
        self._delete_checkpoint(checkpoint)  # the claim stays: a worker that found every part before the
        # completion must not claim it again (``cleanup`` drops claims with the checkpoints it deletes)
        if self.options.copy_annotations:
            self._sync_annotations(row, destination_key, completed["ETag"])
        return (f"multipart copy, {work.part_count} parts by {work.group_size} workers, completed by this one "
                f"({runs}){note}", completed)

    def _verify(self, row: ManifestRow, source: dict, destination_key: str, method: str,
                answer: dict | None = None) -> str:
        if not self.completed_here:
            return "by the worker that completes the upload"
        return super()._verify(row, source, destination_key, method, answer)

    def _shared_upload(self, row: ManifestRow, source: dict, destination_key: str) -> tuple[Checkpoint, str]:
        """The group's upload: resumed from its checkpoint, or created here if none is valid (see above)."""
        plan = PartPlan(row.size, self.work.part_size)
        for _ in range(_CREATE_ATTEMPTS):
            checkpoint, note = self._resume(row, source, destination_key, plan)
            if checkpoint is not None:
                return checkpoint, note
            if note:  # a stale checkpoint (its upload aborted by _resume): remove it so a new one can be created
                self._discard_checkpoint(row, destination_key)
            fresh = self._start_upload(row, source, destination_key, plan)
            if self.checkpoints.create(fresh):
                return fresh, note
            self._abort(destination_key, fresh.upload_id)  # another worker's upload won: join it
        raise CopyError("UploadContention", f"{self._source_uri(row)}: the workers sharing its parts could not agree "
                        f"on one multipart upload in {_CREATE_ATTEMPTS} rounds", temporary=True)
