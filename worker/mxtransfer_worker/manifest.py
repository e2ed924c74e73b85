"""S3 Batch Operations CSV manifests (``bucket,key[,versionId]``, keys URL-encoded) and S3 Inventory reports.

A manifest line is ``bucket,key`` or ``bucket,key,versionId`` with the key URL-encoded the way S3 Batch
Operations and S3 Inventory encode keys: form-style encoding of the key's UTF-8 bytes, where a space is
``+`` and a ``+`` is ``%2B``, so reading needs ``unquote_plus`` (``%20`` also reads as a space). Writing
uses ``quote_plus(key, safe="/")``: every byte outside ``A-Z a-z 0-9 _ . - ~ /`` becomes ``%XX``, so commas,
quotes and newlines never need CSV quoting; reading still accepts quoted fields (S3 Inventory quotes every
field). Version ids are written and read as they are. Sources:

- "The contents of the manifest must be URL encoded": S3 Batch Operations basics,
  https://docs.aws.amazon.com/AmazonS3/latest/dev/batch-ops-basics.html
- S3 Inventory writes keys "URL-encoded with space encoded as plus":
  https://github.com/cloud-custodian/cloud-custodian/issues/1997 (fixed with ``unquote_plus`` in PR #1998).
- Keys that S3 Batch Operations hands to Lambda decode with ``unquote_plus``, checked against S3 Batch
  Operations: https://github.com/aws-powertools/powertools-lambda-python/pull/3572
- Inventory ``manifest.json`` (``sourceBucket``, ``destinationBucket`` ARN, ``fileFormat``, ``fileSchema``,
  ``files[].key``): https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html

The sizes sidecar: S3 Batch Operations accepts only the 2 or 3 columns above, so object sizes (which shard
planning needs) live in a separate object next to the manifest, named manifest + ``SIZES_SUFFIX``
(``s3://b/m.csv`` -> ``s3://b/m.csv.sizes``): one decimal size in bytes per line, in manifest row order,
optionally followed by ``,`` and the object's ETag as the listing gave it (without quotes). It is written only
when every row's size is known; a manifest without one has unknown sizes. A listed size and ETag let the
copier copy a small object with one request (no HEAD of the source; ``CopySourceIfMatch`` pins the ETag).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import itertools
import json
import re
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Iterable, Iterator, TextIO
from urllib.parse import quote_plus, unquote_plus

from botocore.exceptions import ClientError

from .s3client import upload
from .s3uri import S3Uri

#: Suffix of the sizes sidecar object: ``s3://b/m.csv`` has its sizes in ``s3://b/m.csv.sizes``.
SIZES_SUFFIX = ".sizes"

#: Manifests and sidecars of at most this many bytes are read whole at their first request and kept for the next
#: passes (``Manifest``); larger ones are streamed at each pass, so no long manifest sits in memory.
KEEP_BYTES = 8 * 1024 * 1024
#: Manifest (and sidecar) lines written at once.
_WRITE_BATCH = 1000
#: In-memory part of the spooled temporary files behind ``upload_manifest``; beyond it they spill to disk.
_SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
_BOM = "\ufeff"
#: The longest line a manifest or inventory report may have, in characters. Real lines are under 10,000 (a
#: 1,024-byte key is at most 3,072 characters URL-encoded); the cap keeps a corrupt file (a 10 GB line, a
#: binary file with no newline) from being read into memory whole.
MAX_LINE_CHARS = 64 * 1024
#: Characters ``quote_plus(key, safe="/")`` leaves as they are: a key made only of them is its own encoding.
_UNENCODED_KEY = re.compile(r"[A-Za-z0-9_.~/-]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: Version ids are written as they are (S3's are URL-safe); these characters would corrupt the line.
_VERSION_BREAKS_CSV = re.compile(r'[,"\r\n]')
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
#: An ETag in the sizes sidecar: S3's hex MD5 with an optional ``-parts`` suffix (other servers: similar tokens).
_ETAG = re.compile(r"[0-9A-Za-z-]{1,128}")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One object named by a manifest: its bucket, decoded key, optional version id, size and ETag (if known).

    ``line`` is the row's 1-based line number in the manifest it was read from (0 when built in code).
    ``etag`` is quoted as S3 answers it (``'"9b2c..."'``).
    """

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    line: int = 0
    etag: str | None = None


@dataclass(frozen=True)
class ManifestStats:
    """What ``write_manifest`` wrote: row count, total of the known sizes, and rows without a size."""

    rows: int = 0
    bytes: int = 0
    unknown_sizes: int = 0


class ManifestError(ValueError):
    """A manifest (or sizes sidecar, or inventory file) that cannot be read: names the source, line and cause."""

    def __init__(self, cause: str, source: str = "manifest", line: int | None = None) -> None:
        self.cause = cause
        self.source = source
        self.line = line
        where = source if line is None else f"{source} line {line}"
        super().__init__(f"{where}: {cause}")

    def __reduce__(self):
        return type(self), (self.cause, self.source, self.line)


def encode_key(key: str) -> str:
    """``key`` URL-encoded as in S3 Batch Operations manifests and S3 Inventory CSV (space as ``+``)."""
    if _UNENCODED_KEY.fullmatch(key):
        return key
    return quote_plus(key, safe="/")


def decode_key(text: str) -> str:
    """The key that ``text`` URL-encodes; ValueError for a malformed ``%`` escape or escapes that are not UTF-8."""
    if "%" not in text:
        return text.replace("+", " ")
    bad = _BAD_ESCAPE.search(text)
    if bad:
        raise ValueError(
            f"bad URL encoding in key {text!r}: {text[bad.start():bad.start() + 3]!r} at position {bad.start()} "
            "is not a %XX escape"
        )
    try:
        return unquote_plus(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"bad URL encoding in key {text!r}: its %XX escapes are not valid UTF-8 ({error.reason})"
        ) from None


def read_manifest(
    lines: Iterable[str], sizes: Iterable[str] | None = None, name: str = "manifest"
) -> Iterator[ManifestRow]:
    """Stream the rows of a CSV manifest given as lines of text, with sizes from the parallel sidecar lines.

    Accepts a UTF-8 BOM, CRLF, quoted fields, a missing final newline and blank lines at the end. Raises
    ManifestError naming ``name`` (or ``name + SIZES_SUFFIX`` for the sidecar) and the line for anything else.
    """
    sizes_source = name + SIZES_SUFFIX
    size_records = None if sizes is None else _records(sizes, sizes_source)
    rows = 0
    for line, fields in _records(lines, name):
        if len(fields) not in (2, 3):
            raise ManifestError(f"expected 2 or 3 columns (bucket,key[,versionId]), got {len(fields)}", name, line)
        size = etag = None
        if size_records is not None:
            size, etag = _next_size(size_records, sizes_source, rows, name, line)
        version_id = fields[2] if len(fields) == 3 else None
        yield _make_row(fields[0], fields[1], version_id, size, line, name, etag)
        rows += 1
    if size_records is not None:
        extra = next(size_records, None)
        if extra is not None:
            raise ManifestError(f"more sizes than the manifest has rows ({rows})", sizes_source, extra[0])


def write_manifest(rows: Iterable[ManifestRow], out: TextIO, sizes_out: TextIO | None = None) -> ManifestStats:
    """Write ``rows`` as ``bucket,encoded_key[,versionId]`` lines to ``out``, and their sizes (and ETags, where
    known) to ``sizes_out``.

    With ``sizes_out`` every row needs a size: a row without one raises ValueError.
    """
    count = total = unknown = 0
    lines: list[str] = []
    sizes: list[str] = []
    for row in rows:
        count += 1
        if len(lines) == _WRITE_BATCH:  # one write per batch: a write per row cost more than the rest of the row
            _write_lines(out, lines)
            _write_lines(sizes_out, sizes)
        if not is_bucket_name(row.bucket):
            raise ValueError(f"row {count} (key {row.key!r}) has an invalid bucket name: {row.bucket!r}")
        if row.version_id is not None and _VERSION_BREAKS_CSV.search(row.version_id):
            raise ValueError(
                f"row {count} (s3://{row.bucket}/{row.key}) has a version id that would break its CSV line: "
                f"{row.version_id!r}"
            )
        version = "" if row.version_id is None else "," + row.version_id
        lines.append(f"{row.bucket},{encode_key(row.key)}{version}\n")
        if row.size is None:
            unknown += 1
            if sizes_out is not None:
                raise ValueError(
                    f"row {count} (s3://{row.bucket}/{row.key}) has no size, and the sizes sidecar requires every size"
                )
        else:
            total += row.size
            if sizes_out is not None:
                sizes.append(_sidecar_line(row))
    _write_lines(out, lines)
    _write_lines(sizes_out, sizes)
    return ManifestStats(rows=count, bytes=total, unknown_sizes=unknown)


def _write_lines(out: TextIO | None, lines: list[str]) -> None:
    """Write ``lines`` to ``out`` (if any) at once, and empty the list."""
    if out is not None and lines:
        out.write("".join(lines))
    lines.clear()


def open_manifest(client, uri: str) -> Iterator[ManifestRow]:
    """Stream the rows of the manifest at ``s3://bucket/key``, with sizes from its sidecar when there is one.

    A sidecar that answers 404 means unknown sizes. Note that S3 answers 403, not 404, for a missing object
    when the caller lacks ``s3:ListBucket``: that error propagates, so grant ListBucket on the manifest bucket.
    """
    yield from Manifest(client, uri).rows()


def manifest_sizes(client, uri: str) -> Iterator[int | None]:
    """The sizes of the rows of the manifest at ``uri``, in order: from its sidecar alone when it has one (a
    cheaper pass than ``open_manifest``'s, which also reads and decodes every row), else from its rows (None for
    unknown sizes). Whether the sidecar matches the manifest row for row is checked by ``open_manifest``."""
    yield from Manifest(client, uri).sizes()


class Manifest:
    """The manifest at ``uri`` and its sizes sidecar, for reading more than once (a shard's plan reads the sizes,
    then its copy the rows): ``rows()`` as ``open_manifest``, ``sizes()`` as ``manifest_sizes``. Each pass asks for
    the two objects at once, and an object of at most ``KEEP_BYTES`` (or a missing one) is kept from its first
    answer, so a small manifest costs one request's wait in all instead of one per object and pass."""

    def __init__(self, client, uri: str) -> None:
        self._client = client
        self.location = _parse_uri(uri)
        self.name = f"manifest {uri}"
        self._sidecar = _sidecar(self.location)
        #: The bodies read whole, and the errors of the missing objects, by location.
        self._kept: dict[S3Uri, bytes | ManifestError] = {}

    def rows(self) -> Iterator[ManifestRow]:
        """The manifest's rows, with sizes from its sidecar when there is one."""
        manifest, sidecar = self._fetch(self.location, self._sidecar)
        yield from self._rows(manifest, sidecar)

    def sizes(self) -> Iterator[int | None]:
        """The rows' sizes: from the sidecar alone when there is one, else from the rows (None for unknown)."""
        sidecar, manifest = self._fetch(self._sidecar, self.location)
        if isinstance(sidecar, ManifestError):
            yield from (row.size for row in self._rows(manifest, sidecar))
            return
        if not isinstance(manifest, ManifestError):
            manifest.close()  # the rows' pass asks again if it was not kept
        source = self.name + SIZES_SUFFIX
        with _text(sidecar) as sizes:
            for line, fields in _records(sizes, source):
                yield _size_record(line, fields, source)[0]

    def _rows(self, manifest: IO[bytes] | ManifestError, sidecar: IO[bytes] | ManifestError) -> Iterator[ManifestRow]:
        with contextlib.ExitStack() as stack:
            sizes = None if isinstance(sidecar, ManifestError) else stack.enter_context(_text(sidecar))
            if isinstance(manifest, ManifestError):
                raise manifest
            lines = stack.enter_context(_text(manifest))
            yield from read_manifest(lines, sizes, name=self.name)

    def _fetch(self, *locations: S3Uri) -> list[IO[bytes] | ManifestError]:
        """For each of ``locations``, its body or the ManifestError saying it is missing: the kept ones from
        memory, the others asked for at once (a thread each: botocore's calls block)."""
        asked = [location for location in locations if location not in self._kept]
        answers = {}
        if asked:
            with ThreadPoolExecutor(len(asked), thread_name_prefix="mxtransfer-manifest") as pool:
                futures = [pool.submit(self._get, location) for location in asked]
            failure = next((future.exception() for future in futures if future.exception()), None)
            if failure is not None:
                for future in futures:
                    if not future.exception() and not isinstance(future.result(), ManifestError):
                        future.result().close()
                raise failure
            answers = dict(zip(asked, (future.result() for future in futures)))
        return [answers[location] if location in answers else self._kept_body(location) for location in locations]

    def _get(self, location: S3Uri) -> IO[bytes] | ManifestError:
        """``location``'s body (kept, and read from memory, when it has at most ``KEEP_BYTES``), or the
        ManifestError saying it is missing (kept too)."""
        source = self.name + (SIZES_SUFFIX if location == self._sidecar else "")
        try:
            answer = _get_object(self._client, location, source)
        except ManifestError as missing:
            self._kept[location] = missing
            return missing
        if answer.get("ContentLength", KEEP_BYTES + 1) > KEEP_BYTES:
            return answer["Body"]
        with contextlib.closing(answer["Body"]) as body:
            self._kept[location] = body.read()
        return self._kept_body(location)

    def _kept_body(self, location: S3Uri) -> io.BytesIO | ManifestError:
        kept = self._kept[location]
        return kept if isinstance(kept, ManifestError) else io.BytesIO(kept)


def upload_manifest(client, rows: Iterable[ManifestRow], uri: str) -> ManifestStats:
    """Write ``rows`` as a manifest at ``uri`` (through spooled temporary files), plus its sizes sidecar.

    The sidecar is uploaded when every row has a size; otherwise any old sidecar at that name is deleted, so
    a stale one is never read with the new manifest. Sidecar first, manifest last.
    """
    location = _parse_uri(uri)
    sidecar = _sidecar(location)
    with _spool() as manifest_file, _spool() as sizes_file:
        sizes_text, manifest_text = (io.TextIOWrapper(spool, encoding="utf-8", newline="")
                                     for spool in (sizes_file, manifest_file))
        stats = write_manifest(_sizes_while_known(rows, sizes_text), manifest_text)
        for text in (sizes_text, manifest_text):
            text.flush()
            text.detach()
        if stats.unknown_sizes:
            client.delete_object(Bucket=sidecar.bucket, Key=sidecar.key)
        else:
            upload(client, sizes_file, sidecar.bucket, sidecar.key)
        upload(client, manifest_file, location.bucket, location.key)
    return stats


def read_inventory(client, manifest_json_uri: str) -> Iterator[ManifestRow]:
    """Stream the objects of a CSV S3 Inventory report from its ``manifest.json``, skipping delete markers.

    Each row gets its ``Size`` and, when the report lists versions, its ``VersionId``; ``line`` is the line
    in the gzipped CSV file it came from.
    """
    source = f"inventory {manifest_json_uri}"
    location = _parse_uri(manifest_json_uri)
    with _open_text(client, location, source) as text:
        try:
            report = json.load(text)
        except json.JSONDecodeError as error:
            raise ManifestError(f"manifest.json is not valid JSON: {error}", source) from None
    columns, data_bucket, files = _inventory_layout(report, source)
    for file_key in files:
        file_source = f"inventory file s3://{data_bucket}/{file_key}"
        with _open_gzip_text(client, S3Uri(data_bucket, file_key), file_source) as lines:
            yield from _inventory_rows(lines, columns, file_source)


def _records(lines: Iterable[str], source: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank CSV records of ``lines`` with their line numbers; blank lines are allowed only at the end."""
    line_num = 0
    blank_line = None
    try:
        reader = csv.reader(_without_bom(_bounded_lines(lines, source)), strict=True)
        for fields in reader:
            line_num = reader.line_num
            if not fields:
                blank_line = blank_line or line_num
                continue
            if blank_line is not None:
                raise ManifestError("blank line before the end of the file", source, blank_line)
            yield line_num, fields
    except csv.Error as error:
        raise ManifestError(f"malformed CSV: {error}", source, reader.line_num) from None
    except UnicodeDecodeError as error:
        raise ManifestError(f"not UTF-8 text at or after line {line_num + 1}: {error}", source) from None


def _bounded_lines(lines: Iterable[str], source: str) -> Iterator[str]:
    """The lines of ``lines``, raising ManifestError at one longer than ``MAX_LINE_CHARS``; a text stream is read
    ``readline(MAX_LINE_CHARS + 1)`` at a time, so such a line is never held whole."""
    readline = getattr(lines, "readline", None)
    chunks = iter(lambda: readline(MAX_LINE_CHARS + 1), "") if readline else iter(lines)
    for number, line in enumerate(chunks, 1):
        if len(line) > MAX_LINE_CHARS:
            raise ManifestError(f"line longer than {MAX_LINE_CHARS:,} characters: not a manifest line (a corrupt "
                                "or binary file?)", source, number)
        yield line


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    iterator = iter(lines)
    first = next(iterator, None)
    return iterator if first is None else itertools.chain((first.removeprefix(_BOM),), iterator)


def _next_size(
    size_records: Iterator[tuple[int, list[str]]], sizes_source: str, rows: int, name: str, line: int
) -> tuple[int, str | None]:
    """The sidecar's size and ETag (quoted, or None) for manifest row number ``rows + 1`` (on ``line`` of ``name``)."""
    record = next(size_records, None)
    if record is None:
        raise ManifestError(f"no size for this row: {sizes_source} ends after {rows} sizes", name, line)
    return _size_record(*record, sizes_source)


def _size_record(size_line: int, fields: list[str], sizes_source: str) -> tuple[int, str | None]:
    """The size and ETag (quoted, or None) of one sidecar record."""
    if len(fields) not in (1, 2) or not _is_decimal(fields[0]) or (len(fields) == 2 and not _ETAG.fullmatch(fields[1])):
        raise ManifestError(f"expected a decimal size in bytes and an optional ETag, got {','.join(fields)!r}",
                            sizes_source, size_line)
    return int(fields[0]), f'"{fields[1]}"' if len(fields) == 2 else None


def _sidecar_line(row: ManifestRow) -> str:
    """``row``'s line in the sizes sidecar: its size, and its ETag when known."""
    etag = row.etag.strip('"') if row.etag else ""
    return f"{row.size},{etag}\n" if etag else f"{row.size}\n"


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _make_row(
    bucket: str, encoded_key: str, version_id: str | None, size: int | None, line: int, source: str,
    etag: str | None = None,
) -> ManifestRow:
    """A validated row: a valid bucket name, a well-encoded non-empty key; an empty version id means none."""
    if not bucket:
        raise ManifestError("empty bucket name", source, line)
    if not is_bucket_name(bucket):
        raise ManifestError(
            f"invalid bucket name {bucket!r} (3-63 lowercase letters, digits, dots and hyphens, starting and "
            "ending with a letter or digit, not an IP address)",
            source,
            line,
        )
    if not encoded_key:
        raise ManifestError("empty key", source, line)
    try:
        key = decode_key(encoded_key)
    except ValueError as error:
        raise ManifestError(str(error), source, line) from None
    return ManifestRow(bucket, key, version_id or None, size, line, etag)


@functools.lru_cache(maxsize=1024)
def is_bucket_name(name: str) -> bool:
    """Whether ``name`` follows S3's rules for new bucket names (3-63 characters, lower case, not an IP)."""
    return bool(_BUCKET_NAME.fullmatch(name)) and ".." not in name and not _IP_ADDRESS.fullmatch(name)


def _inventory_layout(report: dict, source: str) -> tuple[list[str], str, list[str]]:
    """The CSV columns, the bucket holding the data files, and the data file keys of an inventory manifest."""
    if not isinstance(report, dict):
        raise ManifestError("manifest.json is not a JSON object", source)
    file_format = report.get("fileFormat")
    if file_format != "CSV":
        raise ManifestError(f"fileFormat is {file_format!r}: only CSV inventory reports can be read", source)
    columns = [column.strip() for column in str(report.get("fileSchema", "")).split(",")]
    missing = [column for column in ("Bucket", "Key") if column not in columns]
    if missing:
        raise ManifestError(f"fileSchema {report.get('fileSchema')!r} lacks {', '.join(missing)}", source)
    destination = str(report.get("destinationBucket", ""))
    arn = destination.split(":", 5)
    if len(arn) != 6 or arn[0] != "arn" or arn[2] != "s3" or not arn[5]:
        raise ManifestError(f"destinationBucket {destination!r} is not an S3 bucket ARN (arn:aws:s3:::bucket)", source)
    files = report.get("files")
    if not isinstance(files, list) or not all(isinstance(entry, dict) and entry.get("key") for entry in files):
        raise ManifestError("files must be a list of objects with a key", source)
    return columns, arn[5], [entry["key"] for entry in files]


def _inventory_rows(lines: Iterable[str], columns: list[str], source: str) -> Iterator[ManifestRow]:
    position = {column: index for index, column in enumerate(columns)}
    for line, fields in _records(lines, source):
        if len(fields) != len(columns):
            raise ManifestError(
                f"expected {len(columns)} columns ({', '.join(columns)}), got {len(fields)}", source, line
            )
        field = {column: fields[index] for column, index in position.items()}
        if field.get("IsDeleteMarker", "").lower() == "true":
            continue
        size_text = field.get("Size", "")
        if size_text and not _is_decimal(size_text):
            raise ManifestError(f"Size {size_text!r} is not a decimal number of bytes", source, line)
        size = int(size_text) if size_text else None
        etag = field.get("ETag", "").strip('"')
        yield _make_row(field["Bucket"], field["Key"], field.get("VersionId"), size, line, source,
                        f'"{etag}"' if etag else None)


def _parse_uri(uri: str) -> S3Uri:
    location = S3Uri.parse(uri)
    if not location.key:
        raise ValueError(f"no object key in S3 URI: {uri!r}")
    return location


def _sidecar(location: S3Uri) -> S3Uri:
    return S3Uri(location.bucket, location.key + SIZES_SUFFIX)


def _get_object(client, location: S3Uri, source: str) -> dict:
    """GetObject's answer; ManifestError naming the object and the S3 error code when it is missing."""
    try:
        return client.get_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise
        code = error.response.get("Error", {}).get("Code", "404")
        raise ManifestError(f"cannot read {location}: {code}", source) from None


def _get_body(client, location: S3Uri, source: str):
    """The streaming body of an S3 object; ManifestError naming it and the S3 error code when it is missing."""
    return _get_object(client, location, source)["Body"]


def _text(body: IO[bytes]) -> TextIO:
    """A body as UTF-8 text, decoded incrementally, line endings kept for the CSV reader."""
    return io.TextIOWrapper(body, encoding="utf-8", newline="")


def _open_text(client, location: S3Uri, source: str) -> TextIO:
    """An S3 object's body as UTF-8 text (``_text``)."""
    return _text(_get_body(client, location, source))


@contextlib.contextmanager
def _open_gzip_text(client, location: S3Uri, source: str) -> Iterator[Iterator[str]]:
    """A gzipped S3 object's lines, decompressed while streaming; ManifestError if it is not valid gzip."""
    body = _get_body(client, location, source)
    with body, gzip.GzipFile(fileobj=body, mode="rb") as unzipped:
        text = io.TextIOWrapper(unzipped, encoding="utf-8", newline="")
        try:
            yield text
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise ManifestError(f"not a valid gzip file: {error}", source) from None


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY_BYTES, mode="w+b")


def _sizes_while_known(rows: Iterable[ManifestRow], sizes_out: TextIO) -> Iterator[ManifestRow]:
    """Pass ``rows`` through, writing their sizes to ``sizes_out`` until the first row without one."""
    known = True
    lines: list[str] = []
    for row in rows:
        known = known and row.size is not None
        if known:
            lines.append(_sidecar_line(row))
            if len(lines) == _WRITE_BATCH:
                _write_lines(sizes_out, lines)
        yield row
    _write_lines(sizes_out, lines)
