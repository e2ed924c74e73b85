"""List the objects under a bucket/prefix: in key order through boto3, or many partitions at once through
awscrt's native S3 client.

Why a second lister: botocore spends about 120 µs of CPU per listed key on this kind of machine (its XML
parser walks every element in Python and parses each ``LastModified`` with dateutil), so a listing of
millions of keys is CPU-bound whatever its concurrency. ``ParallelLister`` sends ``ListObjectsV2`` through
awscrt's ``S3Client`` (signing, connection pooling and retries of 5xx/SlowDown in native code) and parses each
page with the standard library's C XML parser, at about a tenth of that (measured with
``benchmarks/list_cpu.py``). It finds partitions as it goes: a prefix is listed with ``Delimiter="/"`` while
there are fewer partitions in hand than requests allowed in flight, so each common prefix it returns becomes a
partition of its own, listed page after page (each page needs the previous one's continuation token) while
the others run. Beyond that, prefixes are listed without a delimiter. Bodies wait in a queue bounded by the
requests in flight and rows are yielded page by page, so memory does not grow with the bucket.

Keys come in S3's order within a partition, not across partitions: callers that merge a listing with another
in key order (``inventory``'s identical-at-destination filter) use ``list_prefix``.
"""

from __future__ import annotations

import queue
import xml.etree.ElementTree as ElementTree
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator
from urllib.parse import quote, unquote

from awscrt.exceptions import AwsCrtError
from awscrt.http import HttpHeaders, HttpRequest
from awscrt.s3 import S3RequestType, S3ResponseError
from botocore.exceptions import ClientError

from .native_s3 import NativeS3
from .s3uri import S3Uri

#: ListObjectsV2 requests in flight by default (one per partition being listed).
DEFAULT_LISTING_CONCURRENCY = 64
#: Seconds without any answer before a listing is given up as hung (a temporary failure).
_ANSWER_TIMEOUT_S = 300.0
_DELIMITER = "/"
_OPERATION = "ListObjectsV2"


class ListingError(RuntimeError):
    """A bucket that cannot be listed: names the bucket and prefix and the cause. ``permanent`` is True when
    trying again will not help until someone acts (the bucket is missing, or access is denied)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One object of a bucket listing."""

    key: str
    size: int
    etag: str
    last_modified: datetime


def list_prefix(client, location: S3Uri, requester_pays: bool = False) -> Iterator[ListedObject]:
    """Every object under ``location`` (bucket and key prefix), page by page, in S3's key order (boto3)."""
    args = {"Bucket": location.bucket, "Prefix": location.key}
    if requester_pays:
        args["RequestPayer"] = "requester"
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**args):
            for item in page.get("Contents", ()):
                yield ListedObject(item["Key"], item["Size"], item.get("ETag", ""), item["LastModified"])
    except ClientError as error:
        raise listing_error(error, location) from error


@dataclass(frozen=True)
class _Partition:
    """A prefix to list (with the delimiter or not) and where its listing has got to."""

    prefix: str
    delimited: bool
    token: str | None = None


@dataclass
class _Page:
    objects: list[ListedObject]
    prefixes: list[str]
    token: str | None


class ParallelLister:
    """Lists bucket/prefix pairs with up to ``concurrency`` ``ListObjectsV2`` requests in flight, through
    awscrt's ``S3Client`` built from the endpoint, region, addressing style and credentials of the boto3
    ``client``. One lister serves one listing at a time."""

    def __init__(self, client, concurrency: int = DEFAULT_LISTING_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError(f"listing concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._native = NativeS3(client, concurrency)

    def objects(self, location: S3Uri, requester_pays: bool = False) -> Iterator[ListedObject]:
        """Every object under ``location``: each partition in key order, partitions interleaved."""
        answers: queue.SimpleQueue = queue.SimpleQueue()
        waiting = deque([_Partition(location.key, delimited=True)])
        in_flight = 0
        while waiting or in_flight:
            while waiting and in_flight < self.concurrency:
                self._send(location.bucket, waiting.popleft(), requester_pays, answers)
                in_flight += 1
            try:
                partition, outcome = answers.get(timeout=_ANSWER_TIMEOUT_S)
            except queue.Empty:
                raise ListingError(f"cannot list {location}: RequestTimeout: no answer to any of {in_flight} "
                                   f"listing requests in {_ANSWER_TIMEOUT_S:.0f} s") from None
            in_flight -= 1
            page = self._page(location, outcome)
            if page.token:  # this partition's next page first: partitions end early and keep few tokens open
                waiting.appendleft(_Partition(partition.prefix, partition.delimited, page.token))
            for prefix in page.prefixes:
                waiting.append(_Partition(prefix, delimited=len(waiting) + in_flight < self.concurrency))
            yield from page.objects

    def _send(self, bucket: str, partition: _Partition, requester_pays: bool, answers: queue.SimpleQueue) -> None:
        query = {"list-type": "2", "encoding-type": "url", "prefix": partition.prefix}
        if partition.delimited:
            query["delimiter"] = _DELIMITER
        if partition.token:
            query["continuation-token"] = partition.token
        text = "&".join(f"{name}={quote(value, safe='')}" for name, value in sorted(query.items()))
        host, path = self._native.address(bucket)
        headers = HttpHeaders([("Host", host)])
        if requester_pays:
            headers.add("x-amz-request-payer", "requester")
        body: list[bytes] = []
        request = self._native.crt.make_request(
            type=S3RequestType.DEFAULT, operation_name=_OPERATION, request=HttpRequest("GET", f"{path}?{text}", headers),
            on_body=lambda chunk, **_: body.append(bytes(chunk)))
        request.finished_future.add_done_callback(
            lambda future: answers.put((partition, future.exception() or b"".join(body))))

    def _page(self, location: S3Uri, outcome: bytes | BaseException) -> _Page:
        """The objects, common prefixes and continuation token of one answer; raises ``ListingError``."""
        if isinstance(outcome, S3ResponseError):
            raise listing_error(self._native.client_error(_OPERATION, outcome.status_code, outcome.headers or [],
                                                          outcome.body or b""), location)
        if isinstance(outcome, BaseException):
            message = f"{outcome.name}: {outcome.message}" if isinstance(outcome, AwsCrtError) else repr(outcome)
            raise ListingError(f"cannot list {location}: {message}")
        root = ElementTree.fromstring(outcome)
        namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        if root.tag == namespace + "Error":  # a 200 whose body is an error: S3 failed after the status line
            raise listing_error(self._native.client_error(_OPERATION, 500, [], outcome), location)
        key_tag, size_tag, etag_tag, modified_tag = (namespace + name for name in ("Key", "Size", "ETag", "LastModified"))
        contents_tag, prefixes_tag, token_tag = (namespace + name for name in
                                                 ("Contents", "CommonPrefixes", "NextContinuationToken"))
        objects, prefixes, token = [], [], None
        for element in root:
            tag = element.tag
            if tag == contents_tag:
                objects.append(ListedObject(
                    unquote(element.findtext(key_tag)), int(element.findtext(size_tag)),
                    element.findtext(etag_tag) or "", datetime.fromisoformat(element.findtext(modified_tag))))
            elif tag == prefixes_tag:
                prefixes.append(unquote(element.findtext(namespace + "Prefix")))
            elif tag == token_tag:
                token = element.text
        return _Page(objects, prefixes, token)


def listing_error(error: ClientError, location: S3Uri) -> ListingError:
    """The ``ListingError`` for a failed listing of ``location``: names the bucket, the cause and the fix."""
    code = error.response.get("Error", {}).get("Code") or str(
        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )
    where = f"cannot list {location}"
    if code in ("NoSuchBucket", "404"):
        return ListingError(f"{where}: NoSuchBucket: bucket {location.bucket!r} does not exist", permanent=True)
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return ListingError(
            f"{where}: AccessDenied: the role may not list bucket {location.bucket!r} (it needs s3:ListBucket on "
            f"arn:aws:s3:::{location.bucket}, and the bucket policy must allow it)",
            permanent=True,
        )
    message = error.response.get("Error", {}).get("Message") or code
    return ListingError(f"{where}: {code}: {message}")
