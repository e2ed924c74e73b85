"""Copy one object server-side: ``CopyObject`` up to a threshold, parallel ``UploadPartCopy`` above it.

boto3's managed ``copy()`` (s3transfer) was the model for what a copy carries (metadata through HEAD, tags,
annotations, ``CopySourceIfMatch`` on every part). It is not used because the engine also needs what it lacks:
a skip when the destination already matches, conditional completion (``If-None-Match``/``If-Match``) so a
destination is never overwritten silently, full-object checksum verification, per-object error
classification for the report, and control of the upload id for resuming after a Spot reclaim.
"""

from __future__ import annotations

import functools
import heapq
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError

from .checkpoints import Checkpoint, CheckpointStore, UnreadableCheckpoint
from .checksums import FULL_OBJECT_ALGORITHMS, compare_checksums, full_object_checksum, same_content
from .completion import build_completions_here
from .errors import CopyError, classify
from .manifest import ManifestRow
from .options import CopyOptions, KeyRewriteError
from .parts import (PART_BATCH_SECONDS, PART_RATE, ObjectTooLargeError, PartPlan, check_object_size, choose_part_size,
                    tapered_plan)
from .s3client import is_aws_endpoint
from .throttle import THROTTLING_CODES, PrefixTurns

SUCCEEDED, SKIPPED, FAILED = "succeeded", "skipped", "failed"
#: The error code of rows a stopping worker did not finish (temporary: the next attempt resumes them).
INTERRUPTED = "Interrupted"
#: The longest sleep before a retry.
MAX_BACKOFF_SECONDS = 20.0
#: The first backoff of a paced object's throttled attempts beyond ``max_attempts`` (``ObjectCopier._backoff``).
PACED_BACKOFF_SECONDS = 0.1
#: Seconds between checks of the stop signal while parts are in flight.
_POLL_SECONDS = 1.0

log = logging.getLogger(__name__)

#: Storage classes whose objects must be restored before they can be copied.
ARCHIVED_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
#: Headers of the source that a multipart copy must set itself on the new upload.
CONTENT_FIELDS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage",
                  "Expires", "WebsiteRedirectLocation")


@dataclass
class CopyResult:
    """The outcome of one manifest row, as it goes into the report."""

    row: ManifestRow
    destination_key: str
    status: str
    error_code: str = ""
    message: str = ""
    bytes: int = 0
    seconds: float = 0.0
    #: For a failure: whether it was temporary (throttling, 5xx, timeouts) when the last attempt gave up.
    temporary: bool = False


class StopSignal:
    """Asks a shard run to stop: no new rows or parts are started, and parts in flight get ``grace_seconds``
    to finish. ``request`` only assigns an attribute, so a signal handler may call it."""

    def __init__(self) -> None:
        self._deadline: float | None = None

    def request(self, grace_seconds: float) -> None:
        if self._deadline is None:
            self._deadline = time.monotonic() + grace_seconds

    @property
    def requested(self) -> bool:
        return self._deadline is not None

    @property
    def expired(self) -> bool:
        """Whether the grace period is over: parts still in flight are abandoned."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def remaining(self) -> float | None:
        """Seconds left of the grace period; None when no stop was requested."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())


class SentCopy:
    """A row's one conditional CopyObject, sent by ``ObjectCopier.send_copy`` before ``copy`` takes the row over:
    the row, its destination key, what the manifest lists of its source (``_listed_source``), when it was sent,
    and the answer of the request (the copy client's ``Answer``)."""

    __slots__ = ("row", "destination_key", "listed", "started", "answer")

    def __init__(self, row: ManifestRow, destination_key: str, listed: dict, started: float) -> None:
        self.row, self.destination_key, self.listed, self.started = row, destination_key, listed, started
        self.answer = None


class Interrupted(CopyError):
    """A copy left unfinished because the worker is stopping."""

    def __init__(self, message: str):
        super().__init__(INTERRUPTED, message, temporary=True)


def _next_look(now: float, retries: list, turn_due: float) -> float:
    """Seconds the part loop waits for an answer before it looks again: until the first of ``retries`` is due or
    the next turn (``turn_due`` from ``now``, 0 for none; at least ``PART_BATCH_SECONDS``: parts go out in batches),
    at most ``_POLL_SECONDS`` (the stop signal)."""
    due = min(retries[0][0] - now if retries else _POLL_SECONDS,
              max(turn_due, PART_BATCH_SECONDS) if turn_due else _POLL_SECONDS)
    return max(0.0, min(_POLL_SECONDS, due))


def _completed_part(number: int, answer: dict) -> dict:
    """The ``CompleteMultipartUpload`` entry of a part from an ``UploadPartCopy`` or ``ListParts`` answer:
    its number, ETag and part checksums."""
    part = {"PartNumber": number, "ETag": answer["ETag"]}
    part.update({name: value for name, value in answer.items()
                 if name.startswith("Checksum") and name != "ChecksumType"})
    return part


def _copy_answer(response: dict) -> dict:
    """The new object's ETag, checksum and encryption from a CopyObject answer."""
    return {**response["CopyObjectResult"], "ServerSideEncryption": response.get("ServerSideEncryption", "")}


def _in_answer(verdict: str, method: str) -> str:
    """What the answer of the request that made the copy verified: CopyObject's carries the new object's ETag or
    checksum; CompleteMultipartUpload's its full-object checksum, which S3 gives only once the object's size
    (``MpuObjectSize``) and that checksum match the ones the request states (``ObjectCopier._complete``)."""
    if method == "CopyObject":
        return f"{verdict} in the copy's response"
    return f"size and {verdict} at completion"


def _copied(verified: str, source: dict) -> tuple[str, str, int]:
    """The outcome of a verified CopyObject of ``source``: status, message, bytes."""
    return SUCCEEDED, f"CopyObject; verified {verified}", source["ContentLength"]


def _temporary(failure: BaseException) -> bool:
    """Whether ``failure`` is an S3 or connection error that a later attempt may get through."""
    return isinstance(failure, (CopyError, ClientError, BotoCoreError)) and classify(failure, "").temporary


class ObjectCopier:
    """Copies single objects server-side with ``options``, running multipart parts on ``part_executor``.

    With ``checkpoints``, a multipart copy keeps a checkpoint while it runs and resumes from it: an interrupted
    copy (``stop`` requested) keeps its upload for the next attempt. Without, every unfinished upload is
    aborted. ``copy_client`` sends the CopyObject and UploadPartCopy requests (e.g. a ``crt_copy.CrtCopyClient``;
    by default ``client``, which sends everything else). With ``paced``, a ``throttle.RequestGovernor`` paces
    the requests of both clients, so a throttled attempt is retried at once: it waits for its turn there rather
    than sleeping through a backoff. Thread-safe: one copier serves all the object threads of a shard run.

    Requests per small object: where the endpoint honours ``If-None-Match`` on CopyObject
    (``options.conditional_copy``) and the manifest lists the object's size and ETag, one conditional CopyObject
    (``CopySourceIfMatch`` the listed ETag, verified by the ETag in its answer); only when S3 refuses it (the
    destination exists, or the source changed since the listing) do HEADs of both sides decide between skip,
    refuse and copy. Elsewhere a HEAD of the destination guards it first: 2 requests with a listed ETag, 3
    without (HEAD of the source too).
    """

    def __init__(self, client, options: CopyOptions, part_executor: Executor,
                 checkpoints: CheckpointStore | None = None, stop: StopSignal | None = None, copy_client=None,
                 paced: bool = False):
        self.client = client
        build_completions_here(client)
        self.paced = paced
        self.copy_client = copy_client or client
        #: Sends a request without a thread of its own (``crt_copy.CrtCopyClient.send``); a boto3 client has none.
        self._send = getattr(self.copy_client, "send", None)
        self.conditional_copy = (options.conditional_copy if options.conditional_copy is not None
                                 else is_aws_endpoint(client))
        self.options = options
        self.part_executor = part_executor
        self.checkpoints = checkpoints
        self.stop = stop or StopSignal()
        self._bucket_exists: dict[str, bool] = {}
        #: The pace of part copies: an object's parts share one key, so one partition of S3, which takes
        #: ``PREFIX_WRITE_RATE`` writes per second: ``PART_RATE`` (a share of that) per destination prefix, a
        #: second's worth at once; a run of the parts (``split``) gets its share. The governor still slows them
        #: further when S3 throttles (e.g. other writers share the partition).
        self._part_turns = PrefixTurns(PART_RATE, burst=1.0)
        self._lock = threading.Lock()

    # -- public ----------------------------------------------------------------------------------------------
    def copy(self, row: ManifestRow, sent: SentCopy | None = None, head: dict | None = None) -> CopyResult:
        """Copy ``row``'s object (retrying temporary failures) and return its verified outcome; never raises
        for a per-object problem. ``sent``: the row's conditional CopyObject that ``send_copy`` sent, whose answer
        is the first attempt's; ``head``: the source's ``head_source`` answer the caller already has, which the
        first attempt takes instead of its own."""
        started = sent.started if sent else time.monotonic()
        try:
            destination_key = sent.destination_key if sent else self.options.destination_key(row.key)
        except KeyRewriteError as error:
            return CopyResult(row, "", FAILED, "InvalidDestinationKey", f"{self._source_uri(row)}: {error}")
        result = CopyResult(row, destination_key, FAILED)
        if self.stop.requested and not sent:
            result.error_code, result.message, result.temporary = INTERRUPTED, "not started: the worker was stopping", True
            return result
        attempt = throttled = 0
        while True:
            attempt += 1
            try:
                result.status, result.message, result.bytes = self._copy_once(row, destination_key, sent, head)
                result.error_code, result.temporary = "", False
                break
            except Exception as raw:  # noqa: BLE001 - every failure becomes a report row
                error = classify(raw, f"copy {self._source_uri(row)} to s3://{self.options.destination_bucket}/{destination_key}")
                result.error_code, result.message, result.temporary = error.code, error.message, error.temporary
                throttled += error.code in THROTTLING_CODES
                if not self._try_again(error, attempt, throttled):
                    break
                sent = head = None
                time.sleep(self._backoff(attempt, error))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def send_copy(self, row: ManifestRow, on_answer: Callable[[SentCopy], None]) -> bool:
        """Send ``row``'s copy without waiting when it is one conditional CopyObject (a listed small object where
        ``conditional_copy`` holds, through a copy client that can ``send``, as ``crt_copy``'s): ``on_answer``
        gets the ``SentCopy`` once answered (on the copy client's thread), and ``copy(row, sent)`` then takes the
        row over. False, and nothing sent, when the row needs ``copy`` from the start."""
        listed = self._listed_source(row)
        if self._send is None or listed is None or not self.conditional_copy or self.stop.requested:
            return False
        try:
            destination_key = self.options.destination_key(row.key)
        except KeyRewriteError:
            return False
        if self._is_own_destination(row, destination_key):
            return False
        sent = SentCopy(row, destination_key, listed, time.monotonic())

        def answered(answer) -> None:
            sent.answer = answer  # may come before ``send`` returns (a ``before-send`` handler's answer)
            on_answer(sent)

        sent.answer = self._send("copy_object", self._copy_object_args(row, listed, destination_key,
                                                                       {"IfNoneMatch": "*"}), answered)
        return True

    def settled(self, sent: SentCopy) -> CopyResult | None:
        """The row's result when its answer settles it without another request (so without waiting): the
        CopyObject succeeded and its answer's ETag or checksum verifies the copy. None when ``copy(sent.row,
        sent)`` must take the row over (a failure, an answer that cannot decide, or one that shows the copy
        wrong, which ``copy`` reports)."""
        if sent.answer.exception() is not None:
            return None
        try:
            verdict = self._content_verdict(sent.row, sent.listed, _copy_answer(sent.answer.result()),
                                            sent.destination_key, "CopyObject")
        except CopyError:
            return None
        if verdict is None:
            return None
        status, message, size = _copied(_in_answer(verdict, "CopyObject"), sent.listed)
        return CopyResult(sent.row, sent.destination_key, status, message=message, bytes=size,
                          seconds=round(time.monotonic() - sent.started, 3))

    def _try_again(self, error: CopyError, attempt: int, throttled: int) -> bool:
        """Whether to retry after failed ``attempt``, ``throttled`` of the failures so far being throttling:
        other temporary failures up to ``max_attempts``, throttling up to ``throttled_attempts`` besides (see
        ``CopyOptions``)."""
        if not error.temporary or self.stop.requested:
            return False
        return attempt < self.options.max_attempts + min(throttled, self.options.throttled_attempts)

    def _backoff(self, attempt: int, error: CopyError) -> float:
        """Seconds to wait before retry ``attempt + 1`` after ``error``: exponential backoff with full jitter, at
        most ``MAX_BACKOFF_SECONDS``. After throttling when the requests are ``paced``: none before attempt
        ``max_attempts``, then one from ``PACED_BACKOFF_SECONDS`` up. The governor's turns alone come every few
        ms while its limit is still above S3's rate (a worker's start, when it spent the prefix's burst), and an
        object throttled at each of them ran out of its throttled attempts in half a second (fleet-one-prefix
        at one worker: 1-3 of 8,000 rows failed with SlowDown at 0.5-0.8 s); with this the attempts last about a
        minute, as without pacing."""
        if self.paced and error.code in THROTTLING_CODES:
            beyond = attempt - self.options.max_attempts
            if beyond < 0:
                return 0.0
            return random.uniform(0, min(MAX_BACKOFF_SECONDS, PACED_BACKOFF_SECONDS * 2 ** beyond))
        return random.uniform(0, min(MAX_BACKOFF_SECONDS, self.options.retry_base_delay * 2 ** (attempt - 1)))

    # -- one attempt -----------------------------------------------------------------------------------------
    def _copy_once(self, row: ManifestRow, destination_key: str, sent: SentCopy | None,
                   head: dict | None = None) -> tuple[str, str, int]:
        options = self.options
        if self._is_own_destination(row, destination_key):
            raise CopyError("SameSourceAndDestination", f"{self._source_uri(row)} is its own destination; "
                            "choose another destination bucket or prefix")
        listed = sent.listed if sent else self._listed_source(row)
        if listed and self.conditional_copy:
            try:
                return self._copy_new(row, listed, destination_key, sent)
            except ClientError as error:
                if classify(error, "").code != "PreconditionFailed":
                    raise
                listed = None  # the destination exists or the source changed since the listing: look at both
        source = listed or self._head_copyable_source(row, head)
        destination = self._head_destination(destination_key)
        if destination is not None and source is listed:
            source = self._head_copyable_source(row)  # comparing with a destination needs the source's checksums
        size = source["ContentLength"]
        condition = {"IfNoneMatch": "*"}
        if destination is not None:
            reason = same_content(source, destination)
            if reason:
                if size > options.multipart_threshold:
                    self._discard_checkpoint(row, destination_key)
                # Single-request copies carry annotations atomically; multipart copies add them afterwards.
                if options.copy_annotations and "-" in destination["ETag"]:
                    completed = self._sync_annotations(row, destination_key, destination["ETag"])
                    if completed:
                        return SUCCEEDED, f"destination already matched ({reason}); copied {completed} missing " \
                                          "annotations", 0
                return SKIPPED, f"destination already matches ({reason})", size
            if not options.overwrite:
                raise CopyError(
                    "DestinationExists",
                    f"s3://{options.destination_bucket}/{destination_key} exists and differs from "
                    f"{self._source_uri(row)} ({destination['ContentLength']:,} vs {size:,} bytes, ETag "
                    f"{destination['ETag']} vs {source['ETag']}); set overwrite to replace it",
                )
            condition = {"IfMatch": destination["ETag"]}  # replace exactly what we looked at, nothing newer
        if size <= options.multipart_threshold:
            return self._copy_small(row, source, destination_key, condition)
        method, completed = self._copy_multipart(row, source, destination_key, condition)
        return SUCCEEDED, f"{method}; verified {self._verify(row, source, destination_key, method, completed)}", size

    def _is_own_destination(self, row: ManifestRow, destination_key: str) -> bool:
        return row.bucket == self.options.destination_bucket and row.key == destination_key

    def _listed_source(self, row: ManifestRow) -> dict | None:
        """What the manifest knows of a small source (size and ETag from the listing), as a stand-in for its HEAD;
        None when it does not know both, or the object is copied by parts (which needs its headers and tags)."""
        if row.etag is None or row.size is None or row.size > self.options.multipart_threshold:
            return None
        return {"ContentLength": row.size, "ETag": row.etag, "Listed": True}

    def _head_copyable_source(self, row: ManifestRow, head: dict | None = None) -> dict:
        """The source's HEAD answer (``head`` when given), once it is known to be copyable."""
        source = head or self.head_source(row)
        self._check_copyable(row, source)
        return source

    def _copy_new(self, row: ManifestRow, listed: dict, destination_key: str,
                  sent: SentCopy | None) -> tuple[str, str, int]:
        """The one-request copy of a listed small object to a key that must not exist yet (``If-None-Match``;
        already ``sent``, when given); raises ``ClientError`` PreconditionFailed when the destination exists or
        the source's ETag changed."""
        return self._copy_small(row, listed, destination_key, {"IfNoneMatch": "*"}, sent)

    def _copy_small(self, row: ManifestRow, source: dict, destination_key: str, condition: dict,
                    sent: SentCopy | None = None) -> tuple[str, str, int]:
        """CopyObject (already ``sent``, when given), verified from its answer. When the answer cannot settle it
        and ``source`` is only what the manifest listed (no checksums: e.g. SSE-KMS, whose ETags are no MD5),
        HEAD the source and verify fully."""
        answer = _copy_answer(sent.answer.result() if sent else self.copy_client.copy_object(
            **self._copy_object_args(row, source, destination_key, condition)))
        verdict = self._content_verdict(row, source, answer, destination_key, "CopyObject")
        if verdict:
            return _copied(_in_answer(verdict, "CopyObject"), source)
        undecided = None  # the answer, when a source with more to compare may yet decide it
        if source.get("Listed"):
            source, undecided = self.head_source(row), answer
        return _copied(self._verify(row, source, destination_key, "CopyObject", undecided), source)

    def head_source(self, row: ManifestRow) -> dict:
        """HEAD the source object (with checksums); a missing bucket or key raises a ``CopyError`` naming it."""
        args = {"Bucket": row.bucket, "Key": row.key, "ChecksumMode": "ENABLED", **self.options.requester_payer}
        if row.version_id:
            args["VersionId"] = row.version_id
        if self.options.expected_source_owner:
            args["ExpectedBucketOwner"] = self.options.expected_source_owner
        try:
            return self.client.head_object(**args)
        except ClientError as error:
            raise self._explain_head_error(error, row.bucket, f"read {self._source_uri(row)}") from error

    def _head_destination(self, key: str) -> dict | None:
        bucket = self.options.destination_bucket
        args = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED", **self.options.requester_payer}
        if self.options.expected_destination_owner:
            args["ExpectedBucketOwner"] = self.options.expected_destination_owner
        try:
            return self.client.head_object(**args)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey") and self._bucket_is_there(bucket):
                return None
            raise self._explain_head_error(error, bucket, f"read destination s3://{bucket}/{key}") from error

    def _explain_head_error(self, error: ClientError, bucket: str, action: str) -> CopyError:
        """HEAD answers carry no error body: turn a bare 404/403 into NoSuchBucket/NoSuchKey/AccessDenied."""
        code = error.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey"):
            if not self._bucket_is_there(bucket):
                return CopyError("NoSuchBucket", f"{action}: NoSuchBucket: bucket {bucket!r} does not exist")
            return CopyError("NoSuchKey", f"{action}: NoSuchKey: the object does not exist (deleted, or wrong key "
                             "or version id in the manifest)")
        return classify(error, action)

    def _bucket_is_there(self, bucket: str) -> bool:
        with self._lock:
            known = self._bucket_exists.get(bucket)
        if known is None:
            try:
                self.client.head_bucket(Bucket=bucket)
                known = True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    return True  # exists but not ours to inspect (e.g. 403): let the object error speak
                known = False
            with self._lock:
                self._bucket_exists[bucket] = known
        return known

    def _check_copyable(self, row: ManifestRow, source: dict) -> None:
        archived = source.get("StorageClass") in ARCHIVED_STORAGE_CLASSES or source.get("ArchiveStatus")
        if archived and 'ongoing-request="false"' not in source.get("Restore", ""):
            tier = source.get("ArchiveStatus") or source.get("StorageClass")
            raise CopyError("InvalidObjectState", f"{self._source_uri(row)} is archived ({tier}): restore it first "
                            "(RestoreObject) and re-run the transfer")
        try:
            check_object_size(source["ContentLength"])
        except ObjectTooLargeError as error:
            raise CopyError("EntityTooLarge", f"{self._source_uri(row)}: {error}") from error

    # -- the two copy methods ------------------------------------------------------------------------------
    def _copy_source(self, row: ManifestRow) -> dict:
        copy_source = {"Bucket": row.bucket, "Key": row.key}
        if row.version_id:
            copy_source["VersionId"] = row.version_id
        return copy_source

    def _owner_and_payer_args(self) -> dict:
        """Arguments every write to the destination carries: bucket owners and requester-pays."""
        options = self.options
        args = dict(options.requester_payer)
        if options.expected_destination_owner:
            args["ExpectedBucketOwner"] = options.expected_destination_owner
        return args

    def _object_args(self) -> dict:
        """Storage class, encryption and ACL for the new object."""
        options = self.options
        args = {}
        if options.storage_class:
            args["StorageClass"] = options.storage_class
        if options.sse:
            args["ServerSideEncryption"] = options.sse
        if options.sse_kms_key_id:
            args["SSEKMSKeyId"] = options.sse_kms_key_id
        if options.acl:
            args["ACL"] = options.acl
        return args

    def _source_owner_args(self) -> dict:
        owner = self.options.expected_source_owner
        return {"ExpectedSourceBucketOwner": owner} if owner else {}

    def _copy_object_args(self, row: ManifestRow, source: dict, destination_key: str, condition: dict) -> dict:
        """The arguments of the CopyObject that copies ``row`` to ``destination_key`` on ``condition``."""
        return {"Bucket": self.options.destination_bucket, "Key": destination_key, "CopySource": self._copy_source(row),
                "CopySourceIfMatch": source["ETag"], **self._copy_object_options, **condition}

    @functools.cached_property
    def _copy_object_options(self) -> dict:
        """What the options add to every CopyObject: directives, the new object's settings, owners and payer
        (made once: the options do not change)."""
        options = self.options
        return {"MetadataDirective": "COPY", "TaggingDirective": "COPY" if options.copy_tags else "REPLACE",
                **self._object_args(), **self._owner_and_payer_args(), **self._source_owner_args(),
                **({"AnnotationDirective": "COPY"} if options.copy_annotations else {})}

    def _copy_multipart(self, row: ManifestRow, source: dict, destination_key: str,
                        condition: dict) -> tuple[str, dict | None]:
        """Copy by parts, resuming from a checkpoint when there is a valid one; returns how it was done and the
        completion's answer (None where another worker completes the upload)."""
        options = self.options
        plan = self._part_plan(source["ContentLength"])
        checkpoint, note = self._resume(row, source, destination_key, plan)
        resumed = checkpoint is not None
        if not resumed:
            checkpoint = self._start_upload(row, source, destination_key, plan)
        try:
            if self.checkpoints and not resumed:
                self.checkpoints.save(checkpoint)
            parts = self._copy_parts(row, source, checkpoint)
            completed = self._complete(source, checkpoint, parts, condition)
        except Interrupted as interruption:
            if not self.checkpoints:
                self._abort(destination_key, checkpoint.upload_id)
                raise
            where = self._save_checkpoint(checkpoint)
            raise Interrupted(f"{interruption.message}; the upload is kept and the next attempt resumes it from "
                              f"the checkpoint {where}") from None
        except BaseException as failure:
            if self.checkpoints and _temporary(failure):
                self._save_checkpoint(checkpoint)  # keep the upload: the next attempt resumes it from its parts
                raise
            self._abort(destination_key, checkpoint.upload_id)
            if self.checkpoints:
                self._delete_checkpoint(checkpoint)
            raise
        if self.checkpoints:
            self._delete_checkpoint(checkpoint)
        if options.copy_annotations:
            self._sync_annotations(row, destination_key, completed["ETag"])
        return f"multipart copy, {len(parts)} parts{note}", completed

    def _complete(self, source: dict, checkpoint: Checkpoint, parts: list[dict], condition: dict) -> dict:
        """CompleteMultipartUpload with every part, on ``condition``; with the source's full-object checksum when
        it has one, which S3 recomputes from the parts and refuses on a mismatch."""
        complete_args = {
            "Bucket": checkpoint.destination_bucket, "Key": checkpoint.destination_key,
            "UploadId": checkpoint.upload_id, "MultipartUpload": {"Parts": parts},
            "MpuObjectSize": checkpoint.source_size, **self._owner_and_payer_args(), **condition,
        }
        source_sum = full_object_checksum(source)
        if source_sum:
            complete_args["ChecksumType"] = "FULL_OBJECT"
            complete_args[f"Checksum{source_sum.algorithm}"] = source_sum.value
        return self.client.complete_multipart_upload(**complete_args)

    def _part_plan(self, size: int) -> PartPlan:
        """The parts of an object of ``size`` bytes: tapered when they are sent at the pace the taper is worked
        out for (``_part_turns``); uniform (``choose_part_size``) when they go out only as others end, on part
        threads or fewer in flight than the pace needs (``part_concurrency``)."""
        if self._send is not None:
            tapered = tapered_plan(size, self.options.part_size)
            if self.options.part_concurrency >= tapered.count:
                return tapered
        return PartPlan(size, choose_part_size(size, self.options.part_size))

    def _start_upload(self, row: ManifestRow, source: dict, destination_key: str, plan: PartPlan) -> Checkpoint:
        """Create the multipart upload (with the source's full-object checksum algorithm when it has one, so
        completion can verify it) and return its checkpoint, not yet saved."""
        source_sum = full_object_checksum(source)
        upload_id = self._create_upload(row, source, destination_key,
                                        source_sum.algorithm if source_sum else FULL_OBJECT_ALGORITHMS[0])
        return Checkpoint(row.bucket, row.key, row.version_id, source["ETag"], source["ContentLength"],
                          self.options.destination_bucket, destination_key, upload_id, plan.head,
                          steady_parts=plan.steady, part_step=plan.step, smallest_part=plan.smallest)

    def _create_upload(self, row: ManifestRow, source: dict, destination_key: str, checksum_algorithm: str) -> str:
        """Start the destination's multipart upload with the source's headers, metadata and tags; returns its id."""
        options = self.options
        create_args = {
            "Bucket": options.destination_bucket, "Key": destination_key, "Metadata": source.get("Metadata", {}),
            **{field: source[field] for field in CONTENT_FIELDS if field in source},
            **self._object_args(), **self._owner_and_payer_args(),
            "ChecksumAlgorithm": checksum_algorithm, "ChecksumType": "FULL_OBJECT",
        }
        tags = self._source_tags(row) if options.copy_tags else []
        if tags:
            create_args["Tagging"] = urlencode([(tag["Key"], tag["Value"]) for tag in tags])
        return self.client.create_multipart_upload(**create_args)["UploadId"]

    # -- checkpoints -----------------------------------------------------------------------------------------
    def _resume(self, row: ManifestRow, source: dict, destination_key: str,
                plan: PartPlan) -> tuple[Checkpoint | None, str]:
        """The checkpoint to resume, with its parts as ``ListParts`` has them, and a note for the result message;
        ``(None, note)`` when there is nothing (valid) to resume. A stale checkpoint's upload is aborted."""
        if not self.checkpoints:
            return None, ""
        try:
            checkpoint = self.checkpoints.load(row, self.options.destination_bucket, destination_key)
        except UnreadableCheckpoint as unreadable:
            log.warning("%s; the copy of %s starts over", unreadable, self._source_uri(row))
            return None, (f"; started over as the checkpoint was unreadable ({unreadable.cause}): the bucket's "
                          "lifecycle rule aborts any upload it named")
        if checkpoint is None:
            return None, ""
        problem = checkpoint.mismatch(source, plan)
        if problem is None:
            try:
                listed = self._listed_parts(destination_key, checkpoint.upload_id)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                problem = "its upload no longer exists (aborted or expired)"
        if problem is None:
            expected = {number: last - first + 1 for number, first, last in plan.ranges()}
            odd = [part["PartNumber"] for part in listed if expected.get(part["PartNumber"]) != part["Size"]]
            if odd:
                problem = f"its upload holds parts of unexpected size (part {odd[0]})"
        if problem:
            self._abort(destination_key, checkpoint.upload_id)
            return None, f"; started over as the checkpoint was stale, {problem}"
        checkpoint.parts = [_completed_part(part["PartNumber"], part) for part in listed]
        return checkpoint, f"; resumed from a checkpoint with {len(listed)} parts already done"

    def _listed_parts(self, destination_key: str, upload_id: str) -> list[dict]:
        """Every part of the upload, by ``ListParts`` (all pages)."""
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.options.destination_bucket, Key=destination_key, UploadId=upload_id,
            **self._owner_and_payer_args())
        return [part for page in pages for part in page.get("Parts", [])]

    def _save_checkpoint(self, checkpoint: Checkpoint) -> str:
        """Write ``checkpoint`` if possible (the copy goes on without: ``ListParts`` knows the parts); returns
        where it is."""
        try:
            return str(self.checkpoints.save(checkpoint))
        except (ClientError, BotoCoreError) as error:
            log.warning("could not update the checkpoint of s3://%s/%s: %s", checkpoint.destination_bucket,
                        checkpoint.destination_key, error)
            return "written when the upload started"

    def _delete_checkpoint(self, checkpoint: Checkpoint | UnreadableCheckpoint) -> None:
        try:
            self.checkpoints.delete(checkpoint)
        except (ClientError, BotoCoreError) as error:
            if isinstance(checkpoint, UnreadableCheckpoint):
                what = f"the unreadable checkpoint {checkpoint.location}"
            else:
                what = (f"the checkpoint of the finished copy to s3://{checkpoint.destination_bucket}/"
                        f"{checkpoint.destination_key}")
            log.warning("could not delete %s: %s", what, error)

    def _discard_checkpoint(self, row: ManifestRow, destination_key: str) -> None:
        """Abort and forget any copy of ``row`` left in flight (e.g. a worker killed just after completing it)."""
        destination_bucket = self.options.destination_bucket
        try:
            checkpoint = self.checkpoints and self.checkpoints.load(row, destination_bucket, destination_key)
        except UnreadableCheckpoint as unreadable:
            self._delete_checkpoint(unreadable)  # no upload to abort that it could name
            return
        if checkpoint:
            self._abort(destination_key, checkpoint.upload_id)
            self._delete_checkpoint(checkpoint)

    # -- parts -------------------------------------------------------------------------------------------------
    def _copy_parts(self, row: ManifestRow, source: dict, checkpoint: Checkpoint,
                    numbers: range | None = None) -> list[dict]:
        """Copy the parts ``checkpoint`` lacks (of ``numbers`` only, when given), adding them to it, at most
        ``_parts_in_flight`` of this object at once; a part that fails temporarily is retried alone (up to
        ``max_attempts``, throttling ``throttled_attempts`` more) after a backoff, so that it does not cost the
        parts already copied; stop at the first part that gives up. When a stop is requested, start no more
        parts and raise ``Interrupted`` once those in flight are done or the grace period is over (then they are
        abandoned: ``ListParts`` tells the next attempt whether they landed). Saves the checkpoint every
        interval."""
        have = {part["PartNumber"] for part in checkpoint.parts}
        plan = checkpoint.plan
        numbers = numbers or range(1, plan.count + 1)
        pending = (part for part in plan.ranges() if part[0] in numbers and part[0] not in have)
        base_args = {
            "Bucket": checkpoint.destination_bucket, "Key": checkpoint.destination_key,
            "UploadId": checkpoint.upload_id, "CopySource": self._copy_source(row), "CopySourceIfMatch": source["ETag"],
            **self._owner_and_payer_args(), **self._source_owner_args(),
        }
        most = self._parts_in_flight(plan.count)
        turns = self._part_turns.for_object(checkpoint.destination_bucket, checkpoint.destination_key,
                                            len(numbers) / plan.count)
        #: answer -> (part number, first byte, last byte, attempts, throttled attempts)
        in_flight: dict[object, tuple[int, int, int, int, int]] = {}
        retries: list[tuple[float, tuple[int, int, int, int, int]]] = []  # a heap by the time they are due
        finished: queue.SimpleQueue = queue.SimpleQueue()
        saved = time.monotonic()
        all_sent = False
        try:
            while True:
                turn_due, now = 0.0, time.monotonic()
                # a part waiting for its retry keeps its place in flight
                while not self.stop.requested and not (turn_due := turns.wait(now)):
                    if retries and retries[0][0] <= now:
                        part = heapq.heappop(retries)[1]
                    elif not all_sent and len(in_flight) + len(retries) < most:
                        number_range = next(pending, None)
                        if number_range is None:
                            all_sent = True
                            break
                        part = (*number_range, 0, 0)
                    else:
                        break
                    turns.take(now)
                    in_flight[self._send_part(base_args, *part[:3], finished.put)] = part
                    now = time.monotonic()
                if (not in_flight and (all_sent and not retries or self.stop.requested)) or self.stop.expired:
                    break
                try:
                    future = finished.get(timeout=_next_look(now, retries, turn_due))
                except queue.Empty:
                    continue
                number, first, last, attempt, throttled = in_flight.pop(future)
                try:
                    checkpoint.parts.append(_completed_part(number, future.result()["CopyPartResult"]))
                except (ClientError, BotoCoreError) as raw:
                    error = classify(raw, f"copy part {number} of {self._source_uri(row)} to "
                                          f"s3://{checkpoint.destination_bucket}/{checkpoint.destination_key}")
                    attempt, throttled = attempt + 1, throttled + (error.code in THROTTLING_CODES)
                    if not self._try_again(error, attempt, throttled):
                        raise error from raw
                    log.info("retrying part %d of s3://%s/%s after %s", number, checkpoint.destination_bucket,
                             checkpoint.destination_key, error.code)
                    heapq.heappush(retries, (time.monotonic() + self._backoff(attempt, error),
                                             (number, first, last, attempt, throttled)))
                if self.checkpoints and time.monotonic() - saved >= self.checkpoints.interval:
                    self._save_checkpoint(checkpoint)
                    saved = time.monotonic()
        finally:
            for future in in_flight:
                future.cancel()
            self._await_ends(in_flight, finished)
        done = sum(part["PartNumber"] in numbers for part in checkpoint.parts)
        if done < len(numbers):
            raise Interrupted(f"interrupted with {done} of {len(numbers)} parts done"
                              + (f", {len(in_flight)} abandoned in flight" if in_flight else ""))
        return sorted(checkpoint.parts, key=lambda part: part["PartNumber"])

    def _parts_in_flight(self, parts: int) -> int:
        """Parts of one object to keep in flight: ``part_concurrency``; with a copy client that sends without a
        thread per request (awscrt's) the pace bounds them (``_part_turns``: a second's worth of parts and those
        sent while the first are copied, thousands for long parts), so all of its ``parts`` may be."""
        if self._send is None:
            return self.options.part_concurrency
        return min(self.options.part_concurrency, parts)

    def _await_ends(self, in_flight: dict, finished: queue.SimpleQueue) -> None:
        """Wait, at most until the grace period ends, for the requests ``in_flight`` to end (each is put on
        ``finished`` when it does: the copy client's answers are not ``concurrent.futures`` ones, so ``wait``
        cannot take them)."""
        pending = set(in_flight)
        while pending:
            remaining = self.stop.remaining()
            try:
                pending.discard(finished.get(timeout=remaining))
            except queue.Empty:
                return

    def _send_part(self, base_args: dict, number: int, first: int, last: int, on_done: Callable) -> object:
        """Start one UploadPartCopy: its answer (a ``Future``, or the copy client's ``Answer``), handed to
        ``on_done`` once there."""
        args = {**base_args, "PartNumber": number, "CopySourceRange": f"bytes={first}-{last}"}
        if self._send is not None:
            return self._send("upload_part_copy", args, on_done)
        future = self.part_executor.submit(self.copy_client.upload_part_copy, **args)
        future.add_done_callback(on_done)
        return future

    def _abort(self, destination_key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.options.destination_bucket, Key=destination_key,
                                               UploadId=upload_id, **self._owner_and_payer_args())
        except ClientError:
            pass  # the copy error is what the report needs; a lifecycle rule aborts what is left

    def _source_tags(self, row: ManifestRow) -> list[dict]:
        args = {"Bucket": row.bucket, "Key": row.key, **self.options.requester_payer}
        if row.version_id:
            args["VersionId"] = row.version_id
        if self.options.expected_source_owner:
            args["ExpectedBucketOwner"] = self.options.expected_source_owner
        return self.client.get_object_tagging(**args).get("TagSet", [])

    def _sync_annotations(self, row: ManifestRow, destination_key: str, destination_etag: str) -> int:
        """Put on the copy every source annotation it lacks (or holds with another ETag), conditional on the
        copy still being ``destination_etag``; returns how many were put. Annotations do not travel with a
        multipart copy, and a re-run must repair a copy whose annotations an earlier run could not finish."""
        source_args = {"Bucket": row.bucket, "Key": row.key, **self.options.requester_payer}
        if row.version_id:
            source_args["VersionId"] = row.version_id
        destination_args = {"Bucket": self.options.destination_bucket, "Key": destination_key,
                            **self._owner_and_payer_args()}
        try:
            present = {a["AnnotationName"]: a.get("ETag") for a in self._annotations(destination_args)}
            put = 0
            for annotation in self._annotations(source_args):
                name = annotation["AnnotationName"]
                if name in present and present[name] == annotation.get("ETag"):
                    continue
                payload = self.client.get_object_annotation(**source_args, AnnotationName=name)["AnnotationPayload"]
                self.client.put_object_annotation(
                    **destination_args, AnnotationName=name, ObjectIfMatch=destination_etag,
                    AnnotationPayload=payload.read() if hasattr(payload, "read") else payload)
                put += 1
            return put
        except (ClientError, BotoCoreError) as raw:
            error = classify(raw, f"copy the annotations of {self._source_uri(row)}")
            raise CopyError("AnnotationCopyFailed", f"s3://{self.options.destination_bucket}/{destination_key} holds "
                            f"the object's bytes but not all its annotations: {error.message}; re-run to complete "
                            "them, or set copy_annotations to false for endpoints without S3 annotations") from raw

    def _annotations(self, args: dict):
        """Every annotation of an object (``ListObjectAnnotations``, all pages)."""
        token = None
        while True:
            page = self.client.list_object_annotations(**args, **({"ContinuationToken": token} if token else {}))
            yield from page.get("Annotations", [])
            token = page.get("NextContinuationToken")
            if not token:
                return

    # -- verification ---------------------------------------------------------------------------------------
    def _verify(self, row: ManifestRow, source: dict, destination_key: str, method: str,
                answer: dict | None = None) -> str:
        """Compare the copy with the source. A full-object checksum or MD5 ETag in the ``answer`` of the request
        that made the copy (CopyObject's or CompleteMultipartUpload's) settles it without another request (equal
        content implies equal size); otherwise HEAD the copy and compare its size, then its checksum or ETag where
        they are comparable."""
        if answer is not None:
            verdict = self._content_verdict(row, source, answer, destination_key, method)
            if verdict:
                return _in_answer(verdict, method)
        copy = self._head_destination(destination_key)
        if copy is None or copy["ContentLength"] != source["ContentLength"]:
            found = "nothing" if copy is None else f"{copy['ContentLength']:,} bytes"
            raise CopyError("VerificationFailed", f"s3://{self.options.destination_bucket}/{destination_key}: after "
                            f"{method}, expected {source['ContentLength']:,} bytes from {self._source_uri(row)}, "
                            f"found {found}")
        verdict = self._content_verdict(row, source, copy, destination_key, method)
        return f"size and {verdict}" if verdict else "size"

    def _content_verdict(self, row: ManifestRow, source: dict, copy: dict, destination_key: str,
                         method: str) -> str | None:
        """What proves ``copy`` (a HEAD or copy answer) has the source's bytes, None if nothing comparable;
        raises ``VerificationFailed`` when a comparable checksum or ETag differs."""
        where = f"s3://{self.options.destination_bucket}/{destination_key}"
        checksums = compare_checksums(source, copy)
        if checksums:
            algorithm, equal = checksums
            if not equal:
                raise CopyError("VerificationFailed", f"{where}: its {algorithm} checksum differs from the "
                                f"source's ({self._source_uri(row)})")
            return algorithm
        if method == "CopyObject" and "-" not in source["ETag"] and not self._kms_involved(source, copy):
            if source["ETag"] != copy["ETag"]:
                raise CopyError("VerificationFailed", f"{where}: ETag {copy['ETag']} differs from the source's "
                                f"{source['ETag']} ({self._source_uri(row)})")
            return "ETag (MD5)"
        return None

    @staticmethod
    def _kms_involved(source: dict, copy: dict) -> bool:
        """SSE-KMS objects have ETags that are not the MD5 of their bytes, so ETags cannot be compared."""
        return "aws:kms" in (source.get("ServerSideEncryption", ""), copy.get("ServerSideEncryption", ""))

    @staticmethod
    def _source_uri(row: ManifestRow) -> str:
        return f"s3://{row.bucket}/{row.key}" + (f"?versionId={row.version_id}" if row.version_id else "")
