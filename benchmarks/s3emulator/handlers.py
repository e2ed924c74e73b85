"""The S3 operations: routing a request to its operation, the timing/throttling/fault model around it, and each
operation's semantics and XML, following what S3 answers (status codes, error codes, messages)."""

from __future__ import annotations

import asyncio
import base64
import bisect
import functools
import hashlib
import time
import xml.etree.ElementTree as ET
from collections import Counter
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, unquote
from xml.sax.saxutils import escape

from . import errors
from .errors import S3Error
from .http import Exchange, Request, Response
from .model import (
    DEFAULT_ACCOUNT, FAULT_200_ERROR, FAULT_500, FAULT_HANG, FAULT_RESET, FAULT_SLOWDOWN, READ, WRITE, EmulatorConfig, FaultInjector,
    RateLimiter,
)
from .store import (
    ARCHIVED_STORAGE_CLASSES, CHECKSUM_ALGORITHMS, STORAGE_CLASSES, Content, ObjectRecord, Part, Store, Upload,
)

MiB, GiB = 1024**2, 1024**3
MAX_COPY_SIZE = 5 * GiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_NUMBER = 10_000
MAX_OBJECT_SIZE = MAX_PART_NUMBER * MAX_COPY_SIZE
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_STANDARD_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires",
                     "x-amz-website-redirect-location")
#: Subresources the emulator does not implement: answered 501 NotImplemented instead of a wrong answer.
_UNSUPPORTED = frozenset({"acl", "policy", "cors", "lifecycle", "replication", "encryption", "website", "logging",
                          "notification", "object-lock", "retention", "legal-hold", "restore", "select", "attributes",
                          "torrent", "versions", "accelerate", "requestPayment", "ownershipControls", "publicAccessBlock",
                          "inventory", "metrics", "analytics", "intelligent-tiering", "annotation", "annotations"})


@functools.lru_cache(maxsize=8)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def iso8601(timestamp: float) -> str:
    return f"{_utc_second(int(timestamp // 1))}.{int(timestamp * 1000) % 1000:03d}Z"


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _xml(root: str, inner: str) -> bytes:
    return _XML_DECLARATION + f'<{root} xmlns="{_NS}">{inner}</{root}>'.encode()


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _url_encode(text: str) -> str:
    """A key or prefix as a listing with ``encoding-type=url`` shows it."""
    return quote(text, safe="/")


def listing_entry(record: ObjectRecord) -> tuple[str, str]:
    """``record.listing``, rendered and kept on the record if it was not yet."""
    checksum = _el("ChecksumAlgorithm", record.checksum_algorithm) + _el("ChecksumType", record.checksum_type) \
        if record.checksum_algorithm else ""
    record.listing = (_el("Key", _url_encode(record.key)),
                      f"{_el('LastModified', iso8601(record.last_modified))}<ETag>\"{record.etag}\"</ETag>{checksum}"
                      f"{_el('Size', record.size)}{_el('StorageClass', record.storage_class)}")
    return record.listing


def _unquote_etag(value: str) -> str:
    return value.strip().strip('"')


def _etag_matches(condition: str, etag: str) -> bool:
    if condition == f'"{etag}"':  # what clients send nearly always
        return True
    return any(tag == "*" or _unquote_etag(tag) == etag for tag in condition.split(","))


def _parse_xml(data: bytes | None) -> ET.Element:
    try:
        root = ET.fromstring(data or b"")
    except ET.ParseError:
        raise errors.malformed_xml() from None
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


def _owner_xml(account: str, tag: str = "Owner") -> str:
    return f"<{tag}><ID>{account}</ID><DisplayName>{account}</DisplayName></{tag}>"


class Context:
    """One request as the operations see it, and the part of its latency it has yet to wait (``owed``)."""

    __slots__ = ("request", "exchange", "headers", "query", "bucket", "key", "account", "request_id", "owed")

    def __init__(self, request: Request, exchange: Exchange, request_id: str, owed: float):
        self.request, self.exchange, self.request_id, self.owed = request, exchange, request_id, owed
        self.headers, self.query = request.headers, request.query
        self.bucket = self.key = ""
        self.account = DEFAULT_ACCOUNT

    async def settle(self, extra: float = 0.0) -> None:
        """Wait what is owed of the latency, plus ``extra`` seconds."""
        delay, self.owed = self.owed + extra, 0.0
        if delay > 0:
            await asyncio.sleep(delay)


class S3App:
    """The S3 application: ``await app(request, exchange)`` answers one HTTP request."""

    def __init__(self, config: EmulatorConfig, store: Store, virtual_host_suffixes: tuple[str, ...] = ("127.0.0.1", "localhost")):
        self.config = config
        self.store = store
        self.virtual_host_suffixes = tuple("." + suffix for suffix in virtual_host_suffixes)
        self.rates = RateLimiter()
        self.faults = FaultInjector(config.seed)
        self.operations: Counter[str] = Counter()
        self.error_codes: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._sequence = 0

    # ----------------------------------------------------------------------------------------------- dispatch
    async def __call__(self, request: Request, exchange: Exchange) -> Response:
        """Answer one request. Its work is done as it arrives and the answer waits the latency (with a copy's own
        time, in ``_transfer``): every request is shifted by the same latency, so their order and the rate
        ceilings are those of working after the latency, and a copy costs one timer instead of two."""
        self._sequence += 1
        request_id = f"{self._sequence:016X}"
        config = self.config
        context = Context(request, exchange, request_id, config.latency_s)
        try:
            response = await self._answer(context, config)
        except S3Error as error:
            response = self._error_response(context, error)
        await context.settle()
        return response

    async def _answer(self, context: Context, config: EmulatorConfig) -> Response:
        request, exchange, request_id = context.request, context.exchange, context.request_id
        bucket, key = context.bucket, context.key = self._address(request)
        operation, method = self._route(request, bucket, key)
        self.operations[operation] += 1
        context.account = self._account(request)
        if bucket and not self.rates.allow(
            config, bucket, key, READ if request.method in ("GET", "HEAD") else WRITE, time.monotonic()
        ):
            raise errors.slow_down()
        fault = self.faults.draw(config, operation)
        if fault is not None:
            self.injected[fault] += 1
            if fault == FAULT_RESET:
                await context.settle()
                exchange.reset()
                return Response(0)
            if fault == FAULT_HANG:
                await context.settle()
                await exchange.hang(config.hang_max_s)
                return Response(0)
            if fault == FAULT_SLOWDOWN:
                raise errors.slow_down()
            if fault == FAULT_500:
                raise errors.internal_error()
            if fault == FAULT_200_ERROR:
                return Response(200, self._base_headers(request_id), errors.internal_error().to_xml(request_id))
        response = await method(context)
        if exchange.started and isinstance(response.body, bytes):
            response.body = response.body.removeprefix(_XML_DECLARATION)
        response.headers[:0] = self._base_headers(request_id)
        return response

    def _error_response(self, context: Context, error: S3Error) -> Response:
        self.error_codes[error.code] += 1
        started = context.exchange.started
        body = b"" if context.request.method == "HEAD" else error.to_xml(context.request_id)
        if started:
            body = body.removeprefix(_XML_DECLARATION)
        headers = self._base_headers(context.request_id)
        if body:
            headers.append(("Content-Type", "application/xml"))
        return Response(200 if started else error.status, headers, body)

    @staticmethod
    def _base_headers(request_id: str) -> list[tuple[str, str]]:
        return [("x-amz-request-id", request_id), ("x-amz-id-2", request_id), ("Server", "S3Emulator")]

    def _address(self, request: Request) -> tuple[str, str]:
        host = request.headers.get("host", "")
        host = "" if "]" in host else host.rsplit(":", 1)[0]
        path = unquote(request.path)
        if host.endswith(self.virtual_host_suffixes):
            for suffix in self.virtual_host_suffixes:
                if host.endswith(suffix) and len(host) > len(suffix):
                    return host[: -len(suffix)], path[1:]
        bucket, _, key = path[1:].partition("/")
        return bucket, key

    def _account(self, request: Request) -> str:
        authorization = request.headers.get("authorization", "")
        credential = authorization.partition("Credential=")[2] or request.query.get("X-Amz-Credential", "")
        return self.config.account_for(credential.partition("/")[0])

    def _route(self, request: Request, bucket: str, key: str):
        method, query = request.method, request.query
        if query and not _UNSUPPORTED.isdisjoint(query):
            raise errors.not_implemented("?" + min(_UNSUPPORTED.intersection(query)))
        if not bucket:
            if method == "GET":
                return "ListBuckets", self.list_buckets
        elif not key:
            if method == "PUT" and not query:
                return "CreateBucket", self.create_bucket
            if method == "HEAD":
                return "HeadBucket", self.head_bucket
            if method == "DELETE" and not query:
                return "DeleteBucket", self.delete_bucket
            if method == "GET":
                if "uploads" in query:
                    return "ListMultipartUploads", self.list_multipart_uploads
                if "location" in query:
                    return "GetBucketLocation", self.get_bucket_location
                if "versioning" in query:
                    return "GetBucketVersioning", self.get_bucket_versioning
                if "tagging" not in query:
                    return ("ListObjectsV2", self.list_objects_v2) if query.get("list-type") == "2" else ("ListObjects", self.list_objects)
            if method == "POST" and "delete" in query:
                return "DeleteObjects", self.delete_objects
        else:
            copy = "x-amz-copy-source" in request.headers
            if method == "PUT":
                if "tagging" in query:
                    return "PutObjectTagging", self.put_object_tagging
                if "uploadId" in query:
                    return ("UploadPartCopy", self.upload_part_copy) if copy else ("UploadPart", self.upload_part)
                return ("CopyObject", self.copy_object) if copy else ("PutObject", self.put_object)
            if method in ("GET", "HEAD"):
                if method == "GET" and "tagging" in query:
                    return "GetObjectTagging", self.get_object_tagging
                if method == "GET" and "uploadId" in query:
                    return "ListParts", self.list_parts
                return ("GetObject", self.get_object) if method == "GET" else ("HeadObject", self.head_object)
            if method == "DELETE":
                if "tagging" in query:
                    return "DeleteObjectTagging", self.delete_object_tagging
                if "uploadId" in query:
                    return "AbortMultipartUpload", self.abort_multipart_upload
                return "DeleteObject", self.delete_object
            if method == "POST":
                if "uploads" in query:
                    return "CreateMultipartUpload", self.create_multipart_upload
                if "uploadId" in query:
                    return "CompleteMultipartUpload", self.complete_multipart_upload
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.",
                      Method=method, ResourceType="OBJECT" if key else "BUCKET")

    # ------------------------------------------------------------------------------------------------ helpers
    def _bucket(self, context: Context, name: str | None = None, owner_header: str = "x-amz-expected-bucket-owner"):
        bucket = self.store.bucket(name or context.bucket)
        expected = context.headers.get(owner_header)
        if expected is not None and expected != bucket.owner:
            raise errors.access_denied()
        return bucket

    def _object(self, context: Context):
        bucket = self._bucket(context)
        record = bucket.objects.get(context.key)
        if record is None:
            raise errors.no_such_key(context.key)
        version = context.query.get("versionId")
        if version not in (None, "null"):
            raise errors.invalid_argument("Invalid version id specified", "versionId", version)
        return bucket, record

    def _upload(self, context: Context) -> tuple[object, Upload]:
        bucket = self._bucket(context)
        upload_id = context.query["uploadId"]
        upload = bucket.uploads.get(upload_id)
        if upload is None or upload.key != context.key:
            raise errors.no_such_upload(upload_id)
        return bucket, upload

    def _attributes(self, context: Context) -> dict:
        """Content type, standard headers, user metadata, storage class and tags given by request headers."""
        headers = context.headers
        metadata = {name[11:]: value for name, value in headers.items() if name.startswith("x-amz-meta-")}
        if sum(len(name) + len(value) for name, value in metadata.items()) > 2048:
            raise S3Error(400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size",
                          Size=sum(len(n) + len(v) for n, v in metadata.items()), MaxSizeAllowed=2048)
        storage_class = headers.get("x-amz-storage-class", "STANDARD")
        if storage_class not in STORAGE_CLASSES:
            raise S3Error(400, "InvalidStorageClass", "The storage class you specified is not valid",
                          StorageClassRequested=storage_class)
        return {
            "content_type": headers.get("content-type", "binary/octet-stream"),
            "headers": {name: headers[name] for name in _STANDARD_HEADERS if name in headers},
            "metadata": metadata,
            "storage_class": storage_class,
            "tags": self._tags(parse_qsl(headers.get("x-amz-tagging", ""), keep_blank_values=True)),
        }

    @staticmethod
    def _tags(pairs: list[tuple[str, str]]) -> dict[str, str]:
        tags = dict(pairs)
        if len(tags) != len(pairs):
            raise S3Error(400, "InvalidTag", "Cannot provide multiple Tags with the same key")
        if len(tags) > 10:
            raise S3Error(400, "BadRequest", "Object tags cannot be greater than 10")
        for name, value in tags.items():
            if not 1 <= len(name) <= 128:
                raise S3Error(400, "InvalidTag", "The TagKey you have provided is invalid", TagKey=name)
            if len(value) > 256:
                raise S3Error(400, "InvalidTag", "The TagValue you have provided is invalid", TagKey=name, TagValue=value)
        return tags

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key.encode()) > 1024:
            raise S3Error(400, "KeyTooLongError", "Your key is too long", Size=len(key.encode()), MaxSizeAllowed=1024)

    @staticmethod
    def _check_write_conditions(context: Context, existing: ObjectRecord | None) -> None:
        """``If-None-Match: *`` and ``If-Match`` on PutObject, CopyObject and CompleteMultipartUpload (conditional
        writes)."""
        if_none_match = context.headers.get("if-none-match")
        if if_none_match is not None and existing is not None:
            raise errors.precondition_failed("If-None-Match")
        if_match = context.headers.get("if-match")
        if if_match is not None:
            if existing is None:
                raise errors.no_such_key(context.key)
            if not _etag_matches(if_match, existing.etag):
                raise errors.precondition_failed("If-Match")

    def _given_checksum(self, context: Context) -> tuple[str | None, str | None]:
        """The checksum algorithm the client chose and the value it sent (header or aws-chunked trailer)."""
        headers, trailers = context.headers, context.request.body.trailers
        for algorithm in CHECKSUM_ALGORITHMS:
            name = f"x-amz-checksum-{algorithm.lower()}"
            value = headers.get(name) or trailers.get(name)
            if value:
                return algorithm, value
        algorithm = headers.get("x-amz-sdk-checksum-algorithm") or headers.get("x-amz-checksum-algorithm")
        return (algorithm.upper() if algorithm else None), None

    def _body_content(self, context: Context, algorithm: str | None, value: str | None) -> Content:
        """The request body as content; checks Content-MD5 and a given checksum where the bytes are at hand."""
        body = context.request.body
        content_md5 = context.headers.get("content-md5")
        if content_md5 is not None and content_md5 != base64.b64encode(bytes.fromhex(body.md5)).decode():
            raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        if body.data is not None:
            content = Content.from_bytes(body.data)
            if value is not None and self.store.checksum(content, algorithm) != value:
                raise errors.bad_digest(algorithm)
            return content
        checksums = {algorithm: value} if value is not None else None
        return self.store.virtual(body.size, self.store.new_content_id(f"put:{body.md5}"), md5=body.md5, checksums=checksums)

    def _object_headers(self, context: Context, record: ObjectRecord, whole: bool = True) -> list[tuple[str, str]]:
        headers = [
            ("ETag", f'"{record.etag}"'),
            ("Last-Modified", http_date(record.last_modified)),
            ("Content-Type", record.content_type),
            ("Accept-Ranges", "bytes"),
            ("x-amz-server-side-encryption", "AES256"),
        ]
        headers.extend(record.headers.items())
        headers.extend((f"x-amz-meta-{name}", value) for name, value in record.metadata.items())
        if record.storage_class != "STANDARD":
            headers.append(("x-amz-storage-class", record.storage_class))
        if record.tags:
            headers.append(("x-amz-tagging-count", str(len(record.tags))))
        if record.restored and record.storage_class in ARCHIVED_STORAGE_CLASSES:
            headers.append(("x-amz-restore", 'ongoing-request="false", expiry-date="Fri, 01 Jan 2100 00:00:00 GMT"'))
        if whole and context.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" and record.checksum:
            headers.append((f"x-amz-checksum-{record.checksum_algorithm.lower()}", record.checksum))
            headers.append(("x-amz-checksum-type", record.checksum_type))
        return headers

    @staticmethod
    def _check_read_conditions(context: Context, record: ObjectRecord, prefix: str = "") -> None:
        """If-Match / If-None-Match / If-(Un)Modified-Since, on GET/HEAD (``prefix`` "") or a copy source
        (``prefix`` "x-amz-copy-source-"), with S3's rules for combining them."""
        headers = context.headers
        if_match = headers.get(prefix + "if-match")
        if_none_match = headers.get(prefix + "if-none-match")
        unmodified_since = headers.get(prefix + "if-unmodified-since")
        modified_since = headers.get(prefix + "if-modified-since")
        copy = bool(prefix)

        def newer_than(value: str) -> bool:
            try:
                return int(record.last_modified) > parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError):
                return True

        label = "x-amz-copy-source-If-" if copy else "If-"
        if if_match is not None:
            if not _etag_matches(if_match, record.etag):
                raise errors.precondition_failed(label + "Match")
        elif unmodified_since is not None and newer_than(unmodified_since):
            raise errors.precondition_failed(label + "Unmodified-Since")
        if if_none_match is not None:
            if _etag_matches(if_none_match, record.etag):
                if copy:
                    raise errors.precondition_failed(label + "None-Match")
                raise S3Error(304, "NotModified", "Not Modified")
        elif modified_since is not None and not newer_than(modified_since):
            if copy:
                raise errors.precondition_failed(label + "Modified-Since")
            raise S3Error(304, "NotModified", "Not Modified")

    def _copy_source(self, context: Context) -> ObjectRecord:
        """The copy source named by ``x-amz-copy-source``, after owner, version, state and condition checks."""
        raw = context.headers["x-amz-copy-source"]
        path, _, query = raw.partition("?")
        source_bucket, _, source_key = unquote(path).lstrip("/").partition("/")
        if not source_bucket or not source_key:
            raise errors.invalid_argument("Invalid copy source object key", "x-amz-copy-source", raw)
        bucket = self._bucket(context, source_bucket, "x-amz-source-expected-bucket-owner")
        record = bucket.objects.get(source_key)
        version = dict(parse_qsl(query)).get("versionId") if query else None
        if record is None:
            if version not in (None, "null"):
                raise S3Error(404, "NoSuchVersion", "The specified version does not exist.", Key=source_key, VersionId=version)
            raise errors.no_such_key(source_key)
        if version not in (None, "null"):
            raise errors.invalid_argument("Invalid version id specified", "x-amz-copy-source", raw)
        if record.storage_class in ARCHIVED_STORAGE_CLASSES and not record.restored:
            raise errors.invalid_object_state(record.storage_class, "Operation is not valid for the source object's storage class")
        self._check_read_conditions(context, record, "x-amz-copy-source-")
        return record

    async def _transfer(self, context: Context, nbytes: int) -> None:
        """Wait as long as copying ``nbytes`` takes; long copies start the 200 response and send keep-alive spaces."""
        delay = self.config.copy_delay(nbytes)
        keepalive = self.config.copy_keepalive_s
        if keepalive <= 0 or delay <= keepalive:
            await context.settle(delay)
            return
        await context.settle()
        # like S3: the declaration, spaces, then the result
        await context.exchange.start(200, self._base_headers(context.request_id) + [("Content-Type", "application/xml")],
                                     _XML_DECLARATION)
        while delay > 0:
            await asyncio.sleep(min(keepalive, delay))
            delay -= keepalive
            if delay > 0:
                await context.exchange.send_chunk(b" ")

    def _checksum_xml(self, algorithm: str | None, value: str | None, checksum_type: str | None = None) -> str:
        if not algorithm or not value:
            return ""
        return _el(f"Checksum{algorithm}", value) + (_el("ChecksumType", checksum_type) if checksum_type else "")

    # ------------------------------------------------------------------------------------------ bucket level
    async def list_buckets(self, context: Context) -> Response:
        buckets = "".join(
            f"<Bucket>{_el('Name', b.name)}{_el('CreationDate', iso8601(b.created))}{_el('BucketRegion', b.region)}</Bucket>"
            for b in sorted(self.store.buckets.values(), key=lambda b: b.name) if b.owner == context.account
        )
        return Response(200, [], _xml("ListAllMyBucketsResult", f"{_owner_xml(context.account)}<Buckets>{buckets}</Buckets>"))

    async def create_bucket(self, context: Context) -> Response:
        name = context.bucket
        if not (3 <= len(name) <= 63) or not all(c.islower() or c.isdigit() or c in ".-" for c in name) \
                or not name[0].isalnum() or not name[-1].isalnum():
            raise S3Error(400, "InvalidBucketName", "The specified bucket is not valid.", BucketName=name)
        region = self.config.region
        if context.request.body.data:
            location = _parse_xml(context.request.body.data).find("LocationConstraint")
            region = location.text if location is not None and location.text else region
        existing = self.store.buckets.get(name)
        if not (existing is not None and existing.owner == context.account and existing.region == "us-east-1"):
            self.store.create_bucket(name, context.account, region)  # us-east-1 answers 200 to its owner's re-create
        return Response(200, [("Location", f"/{name}")])

    async def head_bucket(self, context: Context) -> Response:
        bucket = self._bucket(context)
        return Response(200, [("x-amz-bucket-region", bucket.region), ("Content-Type", "application/xml")])

    async def delete_bucket(self, context: Context) -> Response:
        bucket = self._bucket(context)
        if bucket.objects:
            raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty", BucketName=bucket.name)
        del self.store.buckets[bucket.name]
        return Response(204)

    async def get_bucket_location(self, context: Context) -> Response:
        bucket = self._bucket(context)
        region = "" if bucket.region == "us-east-1" else bucket.region
        return Response(200, [("Content-Type", "application/xml")], _xml("LocationConstraint", escape(region)))

    async def get_bucket_versioning(self, context: Context) -> Response:
        self._bucket(context)
        return Response(200, [("Content-Type", "application/xml")], _xml("VersioningConfiguration", ""))

    def _list(self, bucket, prefix: str, delimiter: str, after: str, after_is_prefix: bool, max_keys: int):
        """Keys and common prefixes after ``after``, at most ``max_keys`` together; plus whether more remain."""
        keys = bucket.sorted_keys()
        index = max(bisect.bisect_right(keys, after) if after else 0, bisect.bisect_left(keys, prefix))
        if after_is_prefix and after:
            index = max(index, bisect.bisect_left(keys, after[:-1] + chr(ord(after[-1]) + 1)))
        contents, prefixes = [], []
        if not delimiter:  # no common prefixes: the page is a slice of the sorted keys
            end = index + max_keys
            if prefix:
                end = min(end, bisect.bisect_left(keys, prefix[:-1] + chr(ord(prefix[-1]) + 1), index))
            contents = [bucket.objects[key] for key in keys[index:end]]
            index = max(index, end)
        while index < len(keys) and len(contents) + len(prefixes) < max_keys:
            key = keys[index]
            if not key.startswith(prefix):
                break
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                prefixes.append(common)
                index = bisect.bisect_left(keys, common[:-1] + chr(ord(common[-1]) + 1))
                continue
            contents.append(bucket.objects[key])
            index += 1
        truncated = index < len(keys) and keys[index].startswith(prefix) and max_keys > 0
        last = max(contents[-1].key if contents else "", prefixes[-1] if prefixes else "")
        return contents, prefixes, truncated, last, bool(prefixes) and last == prefixes[-1]

    def _list_xml(self, contents, prefixes, encode, fetch_owner: bool, owner: str) -> str:
        """The ``Contents`` and ``CommonPrefixes`` of a listing page; each object's XML is rendered once and kept
        on its record (a page of 1,000 keys is then mostly a join)."""
        url = encode is _url_encode
        owner_xml = _owner_xml(owner) if fetch_owner else ""
        parts = []
        for record in contents:
            listing = record.listing or listing_entry(record)
            key_xml = listing[0] if url else _el("Key", record.key)
            parts.append(f"<Contents>{key_xml}{listing[1]}{owner_xml}</Contents>")
        parts.extend(f"<CommonPrefixes>{_el('Prefix', encode(p))}</CommonPrefixes>" for p in prefixes)
        return "".join(parts)

    @staticmethod
    def _max(query: dict[str, str], name: str, default: int = 1000) -> int:
        value = query.get(name, str(default))
        if not value.isdigit():
            raise errors.invalid_argument("Provided max-keys not an integer or within integer range", name, value)
        return min(int(value), 1000)

    @staticmethod
    def _encoder(query: dict[str, str]):
        encoding = query.get("encoding-type")
        if encoding is None:
            return lambda text: text, ""
        if encoding != "url":
            raise errors.invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", encoding)
        return _url_encode, _el("EncodingType", "url")

    async def list_objects_v2(self, context: Context) -> Response:
        bucket = self._bucket(context)
        query = context.query
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        max_keys = self._max(query, "max-keys")
        token = query.get("continuation-token")
        after, after_is_prefix = query.get("start-after", ""), False
        if token is not None:
            try:
                decoded = base64.urlsafe_b64decode(token.encode()).decode()
            except ValueError:
                decoded = ""
            if decoded[:1] not in ("K", "P"):
                raise errors.invalid_argument("The continuation token provided is incorrect", "continuation-token", token)
            after, after_is_prefix = max(after, decoded[1:]), decoded[0] == "P"
        contents, prefixes, truncated, last, last_is_prefix = self._list(bucket, prefix, delimiter, after, after_is_prefix, max_keys)
        encode, encoding_xml = self._encoder(query)
        inner = [_el("Name", bucket.name), _el("Prefix", encode(prefix)), _el("MaxKeys", max_keys),
                 _el("KeyCount", len(contents) + len(prefixes)), _el("IsTruncated", str(truncated).lower())]
        if delimiter:
            inner.append(_el("Delimiter", encode(delimiter)))
        if token is not None:
            inner.append(_el("ContinuationToken", token))
        if truncated:
            marker = ("P" if last_is_prefix else "K") + last
            inner.append(_el("NextContinuationToken", base64.urlsafe_b64encode(marker.encode()).decode()))
        if "start-after" in query:
            inner.append(_el("StartAfter", encode(query["start-after"])))
        inner.append(encoding_xml)
        inner.append(self._list_xml(contents, prefixes, encode, query.get("fetch-owner") == "true", bucket.owner))
        return Response(200, [("Content-Type", "application/xml")], _xml("ListBucketResult", "".join(inner)))

    async def list_objects(self, context: Context) -> Response:
        bucket = self._bucket(context)
        query = context.query
        prefix, delimiter, marker = query.get("prefix", ""), query.get("delimiter", ""), query.get("marker", "")
        max_keys = self._max(query, "max-keys")
        after_is_prefix = bool(delimiter) and marker.endswith(delimiter) and marker.startswith(prefix) \
            and marker.find(delimiter, len(prefix)) == len(marker) - len(delimiter)
        contents, prefixes, truncated, last, _ = self._list(bucket, prefix, delimiter, marker, after_is_prefix, max_keys)
        encode, encoding_xml = self._encoder(query)
        inner = [_el("Name", bucket.name), _el("Prefix", encode(prefix)), _el("Marker", encode(marker)),
                 _el("MaxKeys", max_keys), _el("IsTruncated", str(truncated).lower())]
        if delimiter:
            inner.append(_el("Delimiter", encode(delimiter)))
            if truncated:
                inner.append(_el("NextMarker", encode(last)))
        inner.append(encoding_xml)
        inner.append(self._list_xml(contents, prefixes, encode, True, bucket.owner))
        return Response(200, [("Content-Type", "application/xml")], _xml("ListBucketResult", "".join(inner)))

    async def delete_objects(self, context: Context) -> Response:
        bucket = self._bucket(context)
        root = _parse_xml(context.request.body.data)
        keys = [element.text or "" for element in root.findall("Object/Key")]
        if not keys or len(keys) > 1000:
            raise errors.malformed_xml()
        quiet = (root.findtext("Quiet") or "").lower() == "true"
        for key in keys:
            bucket.delete(key)
        deleted = "" if quiet else "".join(f"<Deleted>{_el('Key', key)}</Deleted>" for key in keys)
        return Response(200, [("Content-Type", "application/xml")], _xml("DeleteResult", deleted))

    # ------------------------------------------------------------------------------------------ object level
    async def head_object(self, context: Context) -> Response:
        return self._read_object(context, head=True)

    async def get_object(self, context: Context) -> Response:
        return self._read_object(context, head=False)

    def _read_object(self, context: Context, head: bool) -> Response:
        _, record = self._object(context)
        if not head and record.storage_class in ARCHIVED_STORAGE_CLASSES and not record.restored:
            raise errors.invalid_object_state(record.storage_class)
        self._check_read_conditions(context, record)
        ranged = "partNumber" in context.query or ("range" in context.headers and record.size > 0)
        # S3 gives no full-object checksum for a range; virtual bytes are stand-ins that their checksum does not match
        whole = not ranged and (head or record.content.data is not None)
        headers = self._object_headers(context, record, whole)
        size = record.size
        start, end, status = 0, size, 200
        part_number = context.query.get("partNumber")
        if part_number is not None:
            sizes = record.part_sizes or (size,)
            if not part_number.isdigit() or not 1 <= int(part_number) <= len(sizes):
                raise S3Error(416, "InvalidPartNumber", "The requested partnumber is not satisfiable",
                              PartNumberRequested=part_number, ActualPartCount=len(sizes))
            start = sum(sizes[: int(part_number) - 1])
            end, status = start + sizes[int(part_number) - 1], 206
            headers.append(("x-amz-mp-parts-count", str(len(sizes))))
        elif "range" in context.headers and size:
            start, end = self._byte_range(context.headers["range"], size)
            status = 206
        if status == 206:
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
        if head:
            return Response(status, headers, b"", length=end - start)
        if record.content.data is not None:
            return Response(status, headers, record.content.data[start:end])
        return Response(status, headers, self.store.iter_bytes(record.content, start, end), length=end - start)

    @staticmethod
    def _byte_range(value: str, size: int) -> tuple[int, int]:
        unit, _, spec = value.partition("=")
        first, _, last = spec.partition("-")
        if unit.strip() != "bytes" or "," in spec or not (first.isdigit() or last.isdigit()) \
                or (first and not first.isdigit()) or (last and not last.isdigit()):
            return 0, size  # S3 ignores a Range header it cannot parse
        if not first:
            return max(0, size - int(last)), size
        if int(first) >= size:
            raise S3Error(416, "InvalidRange", "The requested range is not satisfiable",
                          RangeRequested=value, ActualObjectSize=size)
        return int(first), min(size, int(last) + 1) if last else size

    async def put_object(self, context: Context) -> Response:
        bucket = self._bucket(context)
        self._check_key(context.key)
        attributes = self._attributes(context)
        if context.request.body.size > MAX_COPY_SIZE:
            raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                          ProposedSize=context.request.body.size, MaxSizeAllowed=MAX_COPY_SIZE)
        algorithm, value = self._given_checksum(context)
        content = self._body_content(context, algorithm, value)
        self._check_write_conditions(context, bucket.objects.get(context.key))
        algorithm = algorithm or "CRC64NVME"
        record = ObjectRecord(
            context.key, content, self.store.md5(content), time.time(), context.account,
            checksum_algorithm=algorithm, checksum_type="FULL_OBJECT", checksum=self.store.checksum(content, algorithm),
            **attributes,
        )
        bucket.put(record)
        return Response(200, [("ETag", f'"{record.etag}"'), ("x-amz-server-side-encryption", "AES256"),
                              (f"x-amz-checksum-{algorithm.lower()}", record.checksum), ("x-amz-checksum-type", "FULL_OBJECT")])

    async def delete_object(self, context: Context) -> Response:
        self._bucket(context).delete(context.key)
        return Response(204)

    async def copy_object(self, context: Context) -> Response:
        bucket = self._bucket(context)
        self._check_key(context.key)
        source = self._copy_source(context)
        if source.size > MAX_COPY_SIZE:
            raise errors.invalid_request(
                f"The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}")
        headers = context.headers
        metadata_directive = headers.get("x-amz-metadata-directive", "COPY").upper()
        tagging_directive = headers.get("x-amz-tagging-directive", "COPY").upper()
        if metadata_directive not in ("COPY", "REPLACE"):
            raise errors.invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", metadata_directive)
        if tagging_directive not in ("COPY", "REPLACE"):
            raise errors.invalid_argument("Unknown tagging directive.", "x-amz-tagging-directive", tagging_directive)
        algorithm = headers.get("x-amz-checksum-algorithm", "").upper() or None
        same = source is bucket.objects.get(context.key)
        if same and metadata_directive == "COPY" and "x-amz-storage-class" not in headers and algorithm is None \
                and "x-amz-website-redirect-location" not in headers:
            raise errors.invalid_request(
                "This copy request is illegal because it is trying to copy an object to itself without changing the"
                " object's metadata, storage class, website redirect location or encryption attributes.")
        attributes = self._attributes(context)
        if metadata_directive == "COPY":
            attributes.update(content_type=source.content_type, headers=dict(source.headers), metadata=dict(source.metadata))
        if tagging_directive == "COPY":
            attributes["tags"] = dict(source.tags)
        if algorithm is None:
            algorithm = source.checksum_algorithm or "CRC64NVME"
        self._check_write_conditions(context, bucket.objects.get(context.key))
        await self._transfer(context, source.size)
        bucket = self._bucket(context)
        self._check_write_conditions(context, bucket.objects.get(context.key))  # S3 decides when the copy lands
        content = source.content
        record = ObjectRecord(
            context.key, content, self.store.md5(content), time.time(), context.account,
            checksum_algorithm=algorithm, checksum_type="FULL_OBJECT", checksum=self.store.checksum(content, algorithm),
            **attributes,
        )
        bucket.put(record)
        result = _el("LastModified", iso8601(record.last_modified)) + f'<ETag>"{record.etag}"</ETag>' \
            + self._checksum_xml(algorithm, record.checksum, "FULL_OBJECT")
        return Response(200, [("Content-Type", "application/xml"), ("x-amz-server-side-encryption", "AES256")],
                        _xml("CopyObjectResult", result))

    # -------------------------------------------------------------------------------------------- multipart
    async def create_multipart_upload(self, context: Context) -> Response:
        bucket = self._bucket(context)
        self._check_key(context.key)
        attributes = self._attributes(context)
        algorithm = context.headers.get("x-amz-checksum-algorithm", "").upper() or None
        checksum_type = context.headers.get("x-amz-checksum-type", "").upper() or None
        if algorithm is not None and algorithm not in CHECKSUM_ALGORITHMS:
            raise errors.invalid_request("Checksum algorithm provided is unsupported.")
        if algorithm is not None:
            checksum_type = checksum_type or ("FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE")
            if (checksum_type == "COMPOSITE" and algorithm == "CRC64NVME") or (checksum_type == "FULL_OBJECT" and algorithm.startswith("SHA")):
                raise errors.invalid_request(
                    f"The {checksum_type} checksum type cannot be used with the {algorithm.lower()} checksum algorithm.")
        upload_id = base64.urlsafe_b64encode(
            hashlib.sha256(f"{bucket.name}/{context.key}/{context.request_id}/{time.time()}".encode()).digest()
        ).decode().rstrip("=")
        bucket.uploads[upload_id] = Upload(upload_id, context.key, time.time(), context.account, checksum_algorithm=algorithm,
                                           checksum_type=checksum_type, **attributes)
        headers = [("Content-Type", "application/xml")]
        if algorithm:
            headers += [("x-amz-checksum-algorithm", algorithm), ("x-amz-checksum-type", checksum_type)]
        inner = _el("Bucket", bucket.name) + _el("Key", context.key) + _el("UploadId", upload_id)
        return Response(200, headers, _xml("InitiateMultipartUploadResult", inner))

    @staticmethod
    def _part_number(context: Context) -> int:
        value = context.query.get("partNumber", "")
        if not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
            raise errors.invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", value)
        return int(value)

    async def upload_part(self, context: Context) -> Response:
        _, upload = self._upload(context)
        number = self._part_number(context)
        if context.request.body.size > MAX_COPY_SIZE:
            raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                          ProposedSize=context.request.body.size, MaxSizeAllowed=MAX_COPY_SIZE)
        algorithm, value = self._given_checksum(context)
        content = self._body_content(context, algorithm, value)
        checksum = self.store.checksum(content, upload.checksum_algorithm) if upload.checksum_algorithm else None
        part = upload.parts[number] = Part(number, content, self.store.md5(content), time.time(), checksum)
        headers = [("ETag", f'"{part.etag}"'), ("x-amz-server-side-encryption", "AES256")]
        if checksum:
            headers.append((f"x-amz-checksum-{upload.checksum_algorithm.lower()}", checksum))
        return Response(200, headers)

    async def upload_part_copy(self, context: Context) -> Response:
        self._upload(context)
        number = self._part_number(context)
        source = self._copy_source(context)
        range_header = context.headers.get("x-amz-copy-source-range")
        first, last = 0, source.size - 1
        if range_header is not None:
            unit, _, spec = range_header.partition("=")
            first_text, _, last_text = spec.partition("-")
            if unit != "bytes" or not first_text.isdigit() or not last_text.isdigit():
                raise errors.invalid_argument(
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are"
                    " the zero-based offsets of the first and last bytes to copy", "x-amz-copy-source-range", range_header)
            first, last = int(first_text), int(last_text)
            if first > last or last >= source.size:
                raise errors.invalid_argument(f"Range specified is not valid for source object of size: {source.size}",
                                              "x-amz-copy-source-range", range_header)
        length = last - first + 1
        if length > MAX_COPY_SIZE:
            raise errors.invalid_request(
                f"The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}")
        content = source.content.slice(first, last + 1)
        await self._transfer(context, length)
        _, upload = self._upload(context)
        algorithm = upload.checksum_algorithm
        checksum = self.store.checksum(content, algorithm) if algorithm else None
        part = upload.parts[number] = Part(number, content, self.store.md5(content), time.time(), checksum)
        result = f'<LastModified>{iso8601(part.last_modified)}</LastModified><ETag>"{part.etag}"</ETag>' \
            + self._checksum_xml(algorithm, checksum)
        return Response(200, [("Content-Type", "application/xml"), ("x-amz-server-side-encryption", "AES256")],
                        _xml("CopyPartResult", result))

    async def complete_multipart_upload(self, context: Context) -> Response:
        bucket = self._bucket(context)
        upload_id = context.query["uploadId"]
        completed = bucket.completed.get(upload_id)
        if completed is not None and completed[0] == context.key:
            return Response(200, [("Content-Type", "application/xml")], completed[1])
        _, upload = self._upload(context)
        root = _parse_xml(context.request.body.data)
        requested = []
        for element in root.findall("Part"):
            number = element.findtext("PartNumber") or ""
            if not number.isdigit():
                raise errors.malformed_xml()
            requested.append((int(number), _unquote_etag(element.findtext("ETag") or "")))
        if not requested:
            raise errors.malformed_xml()
        parts = []
        for index, (number, etag) in enumerate(requested):
            if index and number <= requested[index - 1][0]:
                raise S3Error(400, "InvalidPartOrder",
                              "The list of parts was not in ascending order. Parts must be ordered by part number.",
                              UploadId=upload_id)
            part = upload.parts.get(number)
            if part is None or part.etag != etag:
                raise S3Error(400, "InvalidPart",
                              "One or more of the specified parts could not be found.  The part may not have been "
                              "uploaded, or the specified entity tag may not match the part's entity tag.",
                              UploadId=upload_id, PartNumber=number, ETag=etag)
            parts.append(part)
        for part in parts[:-1]:
            if part.content.size < MIN_PART_SIZE:
                raise S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.",
                              ProposedSize=part.content.size, MinSizeAllowed=MIN_PART_SIZE, PartNumber=part.number,
                              ETag=part.etag)
        self._check_write_conditions(context, bucket.objects.get(context.key))
        content = self.store.concat([part.content for part in parts])
        expected_size = context.headers.get("x-amz-mp-object-size")
        if expected_size is not None and expected_size != str(content.size):
            raise errors.invalid_request(
                f"The provided 'x-amz-mp-object-size' header value {expected_size} does not match what was computed: {content.size}")
        etag = hashlib.md5(b"".join(bytes.fromhex(part.etag) for part in parts)).hexdigest() + f"-{len(parts)}"
        algorithm = upload.checksum_algorithm or "CRC64NVME"
        checksum_type = upload.checksum_type or "FULL_OBJECT"
        if checksum_type == "COMPOSITE":
            checksum = self.store.composite_checksum(algorithm, [part.checksum for part in parts])
        else:
            checksum = self.store.checksum(content, algorithm)
        given = context.headers.get(f"x-amz-checksum-{algorithm.lower()}")
        if given is not None and given != checksum:
            raise errors.bad_digest(algorithm)
        record = ObjectRecord(
            context.key, content, etag, time.time(), context.account, content_type=upload.content_type,
            headers=upload.headers, metadata=upload.metadata, tags=upload.tags, storage_class=upload.storage_class,
            checksum_algorithm=algorithm, checksum_type=checksum_type, checksum=checksum,
            part_sizes=tuple(part.content.size for part in parts),
        )
        bucket.put(record)
        del bucket.uploads[upload_id]
        inner = _el("Location", f"/{bucket.name}/{quote(context.key)}") + _el("Bucket", bucket.name) + _el("Key", context.key) \
            + f'<ETag>"{etag}"</ETag>' + (self._checksum_xml(algorithm, checksum, checksum_type) if upload.checksum_algorithm else "")
        body = _xml("CompleteMultipartUploadResult", inner)
        bucket.completed[upload_id] = (context.key, body)
        return Response(200, [("Content-Type", "application/xml"), ("x-amz-server-side-encryption", "AES256")], body)

    async def abort_multipart_upload(self, context: Context) -> Response:
        bucket, upload = self._upload(context)
        del bucket.uploads[upload.upload_id]
        return Response(204)

    async def list_parts(self, context: Context) -> Response:
        bucket, upload = self._upload(context)
        marker_text = context.query.get("part-number-marker", "0")
        marker = int(marker_text) if marker_text.isdigit() else 0
        max_parts = self._max(context.query, "max-parts")
        numbers = sorted(number for number in upload.parts if number > marker)
        page, truncated = numbers[:max_parts], len(numbers) > max_parts
        algorithm = upload.checksum_algorithm
        items = "".join(
            f"<Part>{_el('PartNumber', p.number)}{_el('LastModified', iso8601(p.last_modified))}<ETag>\"{p.etag}\"</ETag>"
            f"{_el('Size', p.content.size)}{self._checksum_xml(algorithm, p.checksum)}</Part>"
            for p in (upload.parts[number] for number in page)
        )
        inner = (
            _el("Bucket", bucket.name) + _el("Key", upload.key) + _el("UploadId", upload.upload_id)
            + _owner_xml(upload.owner, "Initiator") + _owner_xml(upload.owner) + _el("StorageClass", upload.storage_class)
            + _el("PartNumberMarker", marker) + _el("NextPartNumberMarker", page[-1] if page else marker)
            + _el("MaxParts", max_parts) + _el("IsTruncated", str(truncated).lower())
            + (_el("ChecksumAlgorithm", algorithm) + _el("ChecksumType", upload.checksum_type) if algorithm else "") + items
        )
        return Response(200, [("Content-Type", "application/xml")], _xml("ListPartsResult", inner))

    async def list_multipart_uploads(self, context: Context) -> Response:
        bucket = self._bucket(context)
        query = context.query
        prefix, key_marker, id_marker = query.get("prefix", ""), query.get("key-marker", ""), query.get("upload-id-marker", "")
        max_uploads = self._max(query, "max-uploads")
        uploads = sorted((u for u in bucket.uploads.values() if u.key.startswith(prefix)),
                         key=lambda u: (u.key, u.initiated, u.upload_id))
        if key_marker:
            uploads = [u for u in uploads if u.key > key_marker or (u.key == key_marker and id_marker and u.upload_id > id_marker)]
        page, truncated = uploads[:max_uploads], len(uploads) > max_uploads
        items = "".join(
            f"<Upload>{_el('Key', u.key)}{_el('UploadId', u.upload_id)}{_owner_xml(u.owner, 'Initiator')}"
            f"{_owner_xml(u.owner)}{_el('StorageClass', u.storage_class)}{_el('Initiated', iso8601(u.initiated))}"
            + (_el("ChecksumAlgorithm", u.checksum_algorithm) + _el("ChecksumType", u.checksum_type) if u.checksum_algorithm else "")
            + "</Upload>"
            for u in page
        )
        inner = (
            _el("Bucket", bucket.name) + _el("KeyMarker", key_marker) + _el("UploadIdMarker", id_marker)
            + _el("NextKeyMarker", page[-1].key if page else "") + _el("NextUploadIdMarker", page[-1].upload_id if page else "")
            + _el("Prefix", prefix) + _el("MaxUploads", max_uploads) + _el("IsTruncated", str(truncated).lower()) + items
        )
        return Response(200, [("Content-Type", "application/xml")], _xml("ListMultipartUploadsResult", inner))

    # ----------------------------------------------------------------------------------------------- tagging
    async def get_object_tagging(self, context: Context) -> Response:
        _, record = self._object(context)
        tags = "".join(f"<Tag>{_el('Key', k)}{_el('Value', v)}</Tag>" for k, v in record.tags.items())
        return Response(200, [("Content-Type", "application/xml")], _xml("Tagging", f"<TagSet>{tags}</TagSet>"))

    async def put_object_tagging(self, context: Context) -> Response:
        _, record = self._object(context)
        root = _parse_xml(context.request.body.data)
        record.tags = self._tags([(tag.findtext("Key") or "", tag.findtext("Value") or "") for tag in root.findall("TagSet/Tag")])
        return Response(200)

    async def delete_object_tagging(self, context: Context) -> Response:
        _, record = self._object(context)
        record.tags = {}
        return Response(204)
