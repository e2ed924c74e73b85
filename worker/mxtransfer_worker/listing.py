"""List the objects under a bucket/prefix: in key order through boto3, or many partitions at once through
awscrt's native S3 client.

Why a second lister: botocore spends about 120 µs of CPU per listed key on this kind of machine (its XML
parser walks every element in Python and parses each ``LastModified`` with dateutil), so a listing of
millions of keys is CPU-bound whatever its concurrency. ``ParallelLister`` sends ``ListObjectsV2`` through
awscrt's ``S3Client`` (signing, connection pooling and retries of 5xx/SlowDown in native code) and reads each
page with a few regular expressions (``ParallelLister._page`` says why), at about a twentieth of that (measured
with ``benchmarks/list_cpu.py``).

It finds partitions as it goes. A prefix is listed with ``Delimiter="/"`` while there are fewer partitions in
hand than requests allowed in flight, so each common prefix it returns becomes a partition of its own; beyond
that, prefixes are listed without a delimiter. A partition's pages follow one another (each needs the previous
one's continuation token), so while requests are to spare, a partition whose page comes back truncated is also
split by key: the rest of its keys are cut into ranges at guessed keys (``_split_points``), each listed from
its lower end (``StartAfter``) up to the next one's, so that one big flat prefix is listed in parallel too.
The ranges of a partition follow one another without gap or overlap, so every key is listed once, whatever
the guesses. Bodies wait in a queue bounded by the requests in flight and rows are yielded page by page, so
memory does not grow with the bucket.

Keys come in S3's order within a partition (a prefix, or a key range of one), not across partitions: callers
that merge a listing with another in key order (``inventory``'s identical-at-destination filter) use
``list_prefix``.
"""

from __future__ import annotations

import bisect
import os
import queue
import re
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Iterator, NamedTuple
from urllib.parse import quote, unquote_plus

from awscrt.exceptions import AwsCrtError
from awscrt.http import HttpHeaders, HttpRequest
from awscrt.s3 import S3RequestType, S3ResponseError
from botocore.exceptions import ClientError

from .native_s3 import NativeS3, xml_text
from .s3uri import S3Uri

#: ListObjectsV2 requests in flight by default (one per partition being listed).
DEFAULT_LISTING_CONCURRENCY = 64
#: Seconds without any answer before a listing is given up as hung (a temporary failure).
_ANSWER_TIMEOUT_S = 300.0
_DELIMITER = "/"
_OPERATION = "ListObjectsV2"
#: Keys per page (``max-keys``): S3's largest.
PAGE_KEYS = 1000
#: Where a flat prefix is split, at the position where a page's keys differ: later characters of the same kind.
_ALPHABETS = ("0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: Pages a key range is cut to hold, at least (by a guess): each range ends with a page that runs past it.
_RANGE_PAGES = 4
#: The parts of a ListObjectsV2 answer the lister reads (see ``ParallelLister._page``).
_KEY, _SIZE, _ETAG, _MODIFIED = (re.compile(rb"<%s>([^<]*)</%s>" % (name, name))
                                 for name in (b"Key", b"Size", b"ETag", b"LastModified"))
_COMMON_PREFIX = re.compile(rb"<CommonPrefixes>\s*<Prefix>([^<]*)</Prefix>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_URL_ENCODED = b"<EncodingType>url</EncodingType>"
_ERROR_ROOT = re.compile(rb"\s*(?:<\?xml[^>]*\?>\s*)?<Error[\s>]")


class ListingError(RuntimeError):
    """A bucket that cannot be listed: names the bucket and prefix and the cause. ``permanent`` is True when
    trying again will not help until someone acts (the bucket is missing, or access is denied)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ListedObject(NamedTuple):
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
    """A prefix to list (with the delimiter or not), or a range of a flat one (its keys after ``after``, up to
    ``until`` included), and where its listing has got to."""

    prefix: str
    delimited: bool
    token: str | None = None
    after: str = ""
    until: str | None = None


@dataclass
class _Page:
    objects: list[ListedObject]
    prefixes: list[str]
    token: str | None


class ParallelLister:
    """Lists bucket/prefix pairs with up to ``concurrency`` ``ListObjectsV2`` requests in flight, through
    awscrt's ``S3Client`` built from the endpoint, region, addressing style and credentials of the boto3
    ``client``, ``page_keys`` keys per page. One lister serves one listing at a time."""

    def __init__(self, client, concurrency: int = DEFAULT_LISTING_CONCURRENCY, page_keys: int = PAGE_KEYS) -> None:
        if concurrency < 1:
            raise ValueError(f"listing concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.page_keys = page_keys
        self._native = NativeS3(client, concurrency)

    def objects(self, location: S3Uri, requester_pays: bool = False) -> Iterator[ListedObject]:
        """Every object under ``location``, once: each partition in key order, partitions interleaved."""
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
            objects, prefixes, token, until = page.objects, page.prefixes, page.token, partition.until
            if until is not None and ((objects and objects[-1].key > until) or (prefixes and prefixes[-1] > until)):
                objects = objects[:bisect.bisect_right(objects, until, key=_key_of)]
                prefixes, token = prefixes[:bisect.bisect_right(prefixes, until)], None
            if token:  # this partition's next page first: partitions end early and keep few tokens open
                spare = self.concurrency - len(waiting) - in_flight - 1
                points = _split_points(partition, objects, spare, self.page_keys) if spare > 0 else []
                ends = [*points, until]
                waiting.appendleft(replace(partition, token=token, until=ends[0]))
                waiting.extend(_Partition(partition.prefix, partition.delimited, after=low, until=high)
                               for low, high in zip(points, ends[1:]))
            for prefix in prefixes:
                waiting.append(_Partition(prefix, delimited=len(waiting) + in_flight < self.concurrency))
            yield from objects

    def _send(self, bucket: str, partition: _Partition, requester_pays: bool, answers: queue.SimpleQueue) -> None:
        query = {"list-type": "2", "encoding-type": "url", "prefix": partition.prefix}
        if self.page_keys != PAGE_KEYS:
            query["max-keys"] = str(self.page_keys)
        if partition.delimited:
            query["delimiter"] = _DELIMITER
        if partition.token:
            query["continuation-token"] = partition.token
        elif partition.after:
            query["start-after"] = partition.after
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
        """The objects, common prefixes and continuation token of one answer; raises ``ListingError``.

        Why not an XML parser: building a tree of a 1,000-key page and walking it cost about 6 µs a key,
        most of this lister's CPU. S3's answer is flat and fixed: each ``Contents`` holds one ``Key``, ``Size``,
        ``ETag`` and ``LastModified`` (no other element of the answer has those names), and text never holds a
        raw ``<``; so one regular expression per field finds them in order, and their counts are checked
        against the ``Contents`` count. Entity and character references are resolved as XML does, and keys
        URL-decoded as botocore does (``+`` is a space) when the answer says ``EncodingType`` url."""
        if isinstance(outcome, S3ResponseError):
            raise listing_error(self._native.client_error(_OPERATION, outcome.status_code, outcome.headers or [],
                                                          outcome.body or b""), location)
        if throttle := self._native.slow_down(outcome, _OPERATION):
            raise listing_error(throttle, location)
        if isinstance(outcome, BaseException):
            message = f"{outcome.name}: {outcome.message}" if isinstance(outcome, AwsCrtError) else repr(outcome)
            raise ListingError(f"cannot list {location}: {message}")
        if _ERROR_ROOT.match(outcome):  # a 200 whose body is an error: S3 failed after the status line
            raise listing_error(self._native.client_error(_OPERATION, 500, [], outcome), location)
        keys, sizes, etags, modified = (pattern.findall(outcome) for pattern in (_KEY, _SIZE, _ETAG, _MODIFIED))
        if not len(keys) == len(sizes) == len(etags) == len(modified) == outcome.count(b"<Contents>"):
            raise ListingError(f"cannot list {location}: an answer to ListObjectsV2 that is not S3's ListBucketResult "
                               f"(its objects do not each have one Key, Size, ETag and LastModified): "
                               f"{outcome[:200]!r}; a listing concurrency of 0 lists through boto3")
        url = _URL_ENCODED in outcome
        text = xml_text if b"&" in outcome else bytes.decode  # no reference anywhere: every value as it is
        objects = [ListedObject(_name(text(key), url), int(size), text(etag), datetime.fromisoformat(when.decode()))
                   for key, size, etag, when in zip(keys, sizes, etags, modified)]
        token = _TOKEN.search(outcome)
        return _Page(objects, [_name(text(prefix), url) for prefix in _COMMON_PREFIX.findall(outcome)],
                     text(token[1]) if token else None)


def _key_of(listed: ListedObject) -> str:
    return listed.key


def _name(text: str, url_encoded: bool) -> str:
    """A key or prefix of a listing answer, from its text."""
    return unquote_plus(text) if url_encoded and ("%" in text or "+" in text) else text


def _split_points(partition: _Partition, page: list[ListedObject], count: int, page_keys: int) -> list[str]:
    """Up to ``count`` keys that split the rest of a partition (after ``page``, the objects of its last page) into
    ranges to list at once: the last key cut at a position, with a later digit or letter there (of the same kind
    as the last key's). The position is the rightmost, from where the page's keys differ back to the prefix's end,
    whose ranges would hold some ``_RANGE_PAGES`` pages, guessed from how far the page got there (a range ends
    with a page that runs past it: smaller ranges would cost more pages than they save).

    Each is a guess at where keys lie: a wrong one costs an empty page, never a key. With the delimiter, no point
    falls inside a common prefix (no point holds the delimiter after the prefix), so each common prefix is found
    by one range only."""
    if not page:
        return []
    first, last = page[0].key, page[-1].key
    differs = len(os.path.commonprefix([first, last]))
    alphabet = _alphabet(last[differs]) if differs < len(last) else ""
    spread = alphabet.find(last[differs]) - alphabet.find(first[differs]) + 1 \
        if alphabet and differs < len(first) and first[differs] in alphabet else 1
    keys = len(page) / spread  # the page's keys per letter at the position looked at
    for position in range(min(differs, len(last) - 1), len(partition.prefix) - 1, -1):
        if position < min(differs, len(last) - 1):
            keys *= len(_alphabet(last[position + 1])) or len(_ALPHABETS[0])
        alphabet = _alphabet(last[position])
        later = [point for point in (last[:position] + letter for letter in alphabet[alphabet.find(last[position]) + 1:])
                 if partition.until is None or point < partition.until]
        if later and keys >= _RANGE_PAGES * page_keys:
            count = min(count, len(later))
            return [later[index * len(later) // count] for index in range(count)]
    return []


def _alphabet(letter: str) -> str:
    return next((letters for letters in _ALPHABETS if letter in letters), "")


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
