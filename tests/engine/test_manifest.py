"""Manifest encoding, reading, writing and S3 round trips (against moto's server)."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import threading

import pytest
from botocore.exceptions import ClientError

from mxtransfer_worker import manifest as manifest_module
from mxtransfer_worker.manifest import (
    SIZES_SUFFIX,
    Manifest,
    ManifestError,
    ManifestRow,
    ManifestStats,
    decode_key,
    encode_key,
    manifest_sizes,
    open_manifest,
    read_manifest,
    upload_manifest,
    write_manifest,
)

#: A 1,024-byte UTF-8 key (S3's maximum): 2-byte characters, 3-byte ones, then ASCII to fill.
LONG_KEY = "é" * 100 + "€" * 100 + "x" * (1024 - 200 - 300)

ODD_KEYS = [
    "plain/key.txt",
    "with space/and  two  spaces.mov",
    "plus+sign/a+b.txt",
    "percent%/100%25done%zz.txt",
    "hash#fragment.txt",
    "question?mark=1&x=2.txt",
    "comma,separated,key.csv",
    'double"quote".txt',
    "new\nline\r\nand\ttab.txt",
    "unicode/ключ/日本語/ファイル.mp4",
    "emoji/🎬🎞️ clip.mov",
    "combining/e\u0301 vs \u00e9.txt",  # a combining acute accent and a precomposed é stay distinct
    " leading and trailing space ",
    "tilde~and-dash_dot.end.",
    "//double//slashes/",
    LONG_KEY,
]


def test_long_key_is_1024_utf8_bytes():
    assert len(LONG_KEY.encode("utf-8")) == 1024


@pytest.mark.parametrize("key", ODD_KEYS)
def test_encode_decode_round_trip(key):
    encoded = encode_key(key)
    assert decode_key(encoded) == key
    # Nothing CSV- or line-special survives encoding, so a written line needs no quoting.
    assert not set(encoded) & set(',"\r\n ')
    assert encoded.isascii()


def test_encoding_is_form_style_like_s3():
    assert encode_key("a b+c") == "a+b%2Bc"
    assert encode_key("dir/sub/file.txt") == "dir/sub/file.txt"
    assert encode_key("ü") == "%C3%BC"
    assert encode_key("a,b#c?d%e") == "a%2Cb%23c%3Fd%25e"
    assert decode_key("a+b%2Bc") == "a b+c"
    assert decode_key("a%20b") == "a b"  # %20 is a space too
    assert decode_key("caf%c3%a9") == "café"  # lower-case hex is accepted


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("bad%zzescape", "'%zz' at position 3 is not a %XX escape"),
        ("ends-with%", "'%' at position 9 is not a %XX escape"),
        ("short%4", "'%4' at position 5 is not a %XX escape"),
        ("not-utf8-%FF", "not valid UTF-8"),
        ("truncated-%C3", "not valid UTF-8"),
        ("overlong-%C0%AF", "not valid UTF-8"),
    ],
)
def test_decode_rejects_bad_encoding(text, cause):
    with pytest.raises(ValueError, match="bad URL encoding") as raised:
        decode_key(text)
    assert cause in str(raised.value)


def _write(rows, with_sizes=False):
    out, sizes = io.StringIO(), io.StringIO() if with_sizes else None
    stats = write_manifest(rows, out, sizes)
    return stats, out.getvalue(), None if sizes is None else sizes.getvalue()


def test_write_then_read_round_trips_odd_keys_versions_and_sizes():
    rows = [ManifestRow("src-bucket", key, None, index * 1000) for index, key in enumerate(ODD_KEYS)]
    rows.append(ManifestRow("src.bucket-2", "versioned key+1", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", 5))
    stats, text, sizes = _write(rows, with_sizes=True)

    assert stats == ManifestStats(rows=len(rows), bytes=sum(row.size for row in rows), unknown_sizes=0)
    assert text.count("\n") == len(rows)  # one line per row: newlines in keys are encoded
    assert text.splitlines()[1] == "src-bucket,with+space/and++two++spaces.mov"
    assert text.splitlines()[-1] == "src.bucket-2,versioned+key%2B1,3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert sizes.splitlines() == [str(row.size) for row in rows]

    read = list(read_manifest(io.StringIO(text), io.StringIO(sizes)))
    assert [(r.bucket, r.key, r.version_id, r.size) for r in read] == [
        (r.bucket, r.key, r.version_id, r.size) for r in rows
    ]
    assert [r.line for r in read] == list(range(1, len(rows) + 1))


def test_sidecar_round_trips_etags_where_known():
    rows = [ManifestRow("bkt", "a", size=3, etag='"900150983cd24fb0d6963f7d28e17f72"'), ManifestRow("bkt", "b", size=0),
            ManifestRow("bkt", "c", size=7, etag='"e5d6b0a7b9f0c2d1a3b4c5d6e7f80912-2"')]
    _, text, sizes = _write(rows, with_sizes=True)
    assert sizes.splitlines() == ["3,900150983cd24fb0d6963f7d28e17f72", "0", "7,e5d6b0a7b9f0c2d1a3b4c5d6e7f80912-2"]
    read = list(read_manifest(io.StringIO(text), io.StringIO(sizes)))
    assert [(r.size, r.etag) for r in read] == [(r.size, r.etag) for r in rows]


def test_write_counts_unknown_sizes_and_refuses_them_in_a_sidecar():
    rows = [ManifestRow("bkt", "a", size=10), ManifestRow("bkt", "b"), ManifestRow("bkt", "c", size=5)]
    assert _write(rows)[0] == ManifestStats(rows=3, bytes=15, unknown_sizes=1)
    with pytest.raises(ValueError, match=r"row 2 \(s3://bkt/b\) has no size, and the sizes sidecar requires every"):
        _write(rows, with_sizes=True)


def test_write_refuses_an_invalid_bucket_name():
    with pytest.raises(ValueError, match="row 1 .* invalid bucket name: 'a,b'"):
        _write([ManifestRow("a,b", "key")])


def test_write_refuses_a_version_id_that_would_break_the_line():
    with pytest.raises(ValueError, match=r"row 1 \(s3://bkt/k\) has a version id that would break its CSV line: 'v,1'"):
        _write([ManifestRow("bkt", "k", "v,1")])


def test_read_without_sidecar_has_unknown_sizes_and_versions():
    rows = list(read_manifest(["bkt,a+b\n", "bkt,c,v1\n", "bkt,d,\n"]))
    assert rows == [
        ManifestRow("bkt", "a b", None, None, 1),
        ManifestRow("bkt", "c", "v1", None, 2),
        ManifestRow("bkt", "d", None, None, 3),  # an empty version column means no version
    ]


def test_read_accepts_bom_crlf_quotes_missing_final_newline_and_trailing_blank_lines():
    lines = ['\ufeff"bkt","a+b%2C"\r\n', '"bkt","key with ""quotes""","v1"\r\n', "bkt,last", "\r\n", "\n"]
    sizes = ["\ufeff1\r\n", "2\r\n", "3", "\n"]
    rows = list(read_manifest(lines, sizes))
    assert [(r.bucket, r.key, r.version_id, r.size, r.line) for r in rows] == [
        ("bkt", "a b,", None, 1, 1),
        ("bkt", 'key with "quotes"', "v1", 2, 2),
        ("bkt", "last", None, 3, 3),
    ]


def test_read_empty_manifest_yields_nothing():
    assert list(read_manifest([])) == []
    assert list(read_manifest(["\ufeff"], [])) == []
    assert list(read_manifest(["\n", "\r\n"], ["\n"])) == []


def test_read_is_lazy():
    def lines():
        yield "bkt,first\n"
        raise AssertionError("read past the first row")

    assert next(read_manifest(lines())).key == "first"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["bkt,a\n", "bkt,b,v,extra\n"], "manifest line 2: expected 2 or 3 columns (bucket,key[,versionId]), got 4"),
        (["bkt\n"], "manifest line 1: expected 2 or 3 columns (bucket,key[,versionId]), got 1"),
        (["bkt,a\n", ",key\n"], "manifest line 2: empty bucket name"),
        (["bkt,\n"], "manifest line 1: empty key"),
        (["bkt,a\n", "bkt,a\n", "Bad_Bucket,key\n"], "manifest line 3: invalid bucket name 'Bad_Bucket'"),
        (["ab,key\n"], "manifest line 1: invalid bucket name 'ab'"),
        (["192.168.1.1,key\n"], "manifest line 1: invalid bucket name '192.168.1.1'"),
        (["my..bucket,key\n"], "manifest line 1: invalid bucket name 'my..bucket'"),
        (["bkt,ok\n", "bkt,bad%zz\n"], "manifest line 2: bad URL encoding in key 'bad%zz'"),
        (["bkt,bad%\n"], "manifest line 1: bad URL encoding in key 'bad%'"),
        (["bkt,bad%FF\n"], "manifest line 1: bad URL encoding in key 'bad%FF': its %XX escapes are not valid UTF-8"),
        (["bkt,a\n", "\n", "bkt,b\n"], "manifest line 2: blank line before the end of the file"),
        (['bkt,"unterminated\n'], "manifest line 1: malformed CSV"),
        (['bkt,"a"b\n'], "manifest line 1: malformed CSV"),
    ],
)
def test_read_rejects_bad_lines_naming_line_and_cause(lines, message):
    with pytest.raises(ManifestError) as raised:
        list(read_manifest(lines))
    assert str(raised.value).startswith(message)


def test_read_error_names_the_manifest():
    with pytest.raises(ManifestError) as raised:
        list(read_manifest(["bkt,a\n"] * 6 + ["bkt,a,b,c\n"], name="manifest s3://b/m.csv"))
    assert str(raised.value) == (
        "manifest s3://b/m.csv line 7: expected 2 or 3 columns (bucket,key[,versionId]), got 4"
    )
    assert (raised.value.source, raised.value.line) == ("manifest s3://b/m.csv", 7)
    assert isinstance(raised.value, ValueError)


def test_manifest_error_pickles_with_its_fields():
    error = pickle.loads(pickle.dumps(ManifestError("empty key", "manifest s3://b/m.csv", 3)))
    assert (str(error), error.cause, error.source, error.line) == (
        "manifest s3://b/m.csv line 3: empty key", "empty key", "manifest s3://b/m.csv", 3
    )


EXPECTED_SIZE = "expected a decimal size in bytes and an optional ETag"


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        (["1\n"], "m.csv line 2: no size for this row: m.csv.sizes ends after 1 sizes"),
        (["1\n", "2\n", "3\n"], "m.csv.sizes line 3: more sizes than the manifest has rows (2)"),
        (["1\n", "x2\n"], f"m.csv.sizes line 2: {EXPECTED_SIZE}, got 'x2'"),
        (["1\n", "-2\n"], f"m.csv.sizes line 2: {EXPECTED_SIZE}, got '-2'"),
        (["1\n", "2,3,4\n"], f"m.csv.sizes line 2: {EXPECTED_SIZE}, got '2,3,4'"),
        (["1\n", "2,not an etag\n"], f"m.csv.sizes line 2: {EXPECTED_SIZE}, got '2,not an etag'"),
        (["1.5\n", "2\n"], f"m.csv.sizes line 1: {EXPECTED_SIZE}, got '1.5'"),
        (["\n", "1\n", "2\n"], "m.csv.sizes line 1: blank line before the end of the file"),
    ],
)
def test_read_rejects_bad_sizes_sidecar(sizes, message):
    with pytest.raises(ManifestError) as raised:
        list(read_manifest(["bkt,a\n", "bkt,b\n"], sizes, name="m.csv"))
    assert str(raised.value) == message


# --- S3 helpers, against moto's server ---------------------------------------------------------------


def _odd_rows(bucket):
    return [ManifestRow(bucket, key, None, len(key.encode("utf-8"))) for key in ODD_KEYS]


def test_upload_then_open_round_trips_odd_keys_that_name_real_objects(s3, make_bucket):
    source, manifests = make_bucket("src"), make_bucket("man")
    rows = _odd_rows(source)
    # moto 5.2.5's server answers 404 to a PUT of a key with a newline (S3 accepts it), so that object is not
    # created; its manifest row still makes the round trip.
    objects = [row for row in rows if "\n" not in row.key]
    assert len(objects) == len(rows) - 1
    for row in objects:
        s3.put_object(Bucket=source, Key=row.key, Body=row.key.encode("utf-8"))
    uri = f"s3://{manifests}/jobs/run 1/manifest.csv"

    stats = upload_manifest(s3, iter(rows), uri)

    assert stats == ManifestStats(rows=len(rows), bytes=sum(row.size for row in rows), unknown_sizes=0)
    sidecar = s3.get_object(Bucket=manifests, Key="jobs/run 1/manifest.csv" + SIZES_SUFFIX)["Body"].read()
    assert sidecar.decode().splitlines() == [str(row.size) for row in rows]
    read = list(open_manifest(s3, uri))
    assert [(r.bucket, r.key, r.size) for r in read] == [(r.bucket, r.key, r.size) for r in rows]
    assert list(manifest_sizes(s3, uri)) == [row.size for row in rows]  # from the sidecar alone
    for row in read:  # each decoded key names the object put under that exact key
        if "\n" not in row.key:
            assert s3.head_object(Bucket=row.bucket, Key=row.key)["ContentLength"] == row.size


def test_open_versioned_manifest_names_each_version(s3, make_bucket):
    bucket = make_bucket("ver", versioned=True)
    first = s3.put_object(Bucket=bucket, Key="a b+c", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="a b+c", Body=b"second")
    uri = f"s3://{bucket}/manifest.csv"
    upload_manifest(s3, [ManifestRow(bucket, "a b+c", first, 3)], uri)

    [row] = open_manifest(s3, uri)

    assert (row.key, row.version_id, row.size) == ("a b+c", first, 3)
    assert s3.get_object(Bucket=bucket, Key=row.key, VersionId=row.version_id)["Body"].read() == b"one"


def test_upload_without_all_sizes_writes_no_sidecar_and_removes_a_stale_one(s3, make_bucket):
    bucket = make_bucket("man")
    uri = f"s3://{bucket}/m.csv"
    upload_manifest(s3, [ManifestRow(bucket, "old", size=1)], uri)
    assert s3.head_object(Bucket=bucket, Key="m.csv.sizes")["ContentLength"] == 2

    stats = upload_manifest(s3, [ManifestRow(bucket, "a", size=1), ManifestRow(bucket, "b")], uri)

    assert stats == ManifestStats(rows=2, bytes=1, unknown_sizes=1)
    with pytest.raises(ClientError, match="404"):
        s3.head_object(Bucket=bucket, Key="m.csv.sizes")
    assert [(r.key, r.size) for r in open_manifest(s3, uri)] == [("a", None), ("b", None)]
    assert list(manifest_sizes(s3, uri)) == [None, None]


def test_open_reads_a_hand_written_manifest_with_bom_crlf_and_raw_utf8_across_chunks(s3, make_bucket):
    """Raw (unencoded) multi-byte characters in a long body: the text decoder must join characters that
    straddle the body's read chunks."""
    bucket = make_bucket("man")
    keys = [f"{index}-ключ-日本-🎬" * 3 for index in range(3000)]
    body = "\ufeff" + "".join(f"{bucket},{key}\r\n" for key in keys)
    assert len(body.encode()) > 200_000
    s3.put_object(Bucket=bucket, Key="hand.csv", Body=body.encode("utf-8"))

    assert [row.key for row in open_manifest(s3, f"s3://{bucket}/hand.csv")] == keys


class _OneByteAtATime(io.RawIOBase):
    """A response body that hands out a single byte per read, splitting every multi-byte character."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(1)
        buffer[: len(chunk)] = chunk
        return len(chunk)


class _StubS3:
    """Just enough of an S3 client for open_manifest: fixed bodies, a 404 for anything else."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket, Key):
        if Key not in self.objects:
            raise ClientError(
                {"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetObject"
            )
        return {"Body": _OneByteAtATime(self.objects[Key])}


def test_open_decodes_characters_split_between_reads():
    keys = ["ключ/日本語/🎬🎞️", "é" * 50]
    manifest = "".join(f"bkt,{key}\n" for key in keys).encode("utf-8")
    client = _StubS3({"m.csv": manifest, "m.csv.sizes": b"1\n2\n"})
    assert [(row.key, row.size) for row in open_manifest(client, "s3://bkt/m.csv")] == [(keys[0], 1), (keys[1], 2)]


def test_open_reports_invalid_utf8(s3, make_bucket):
    bucket = make_bucket("man")
    s3.put_object(Bucket=bucket, Key="latin1.csv", Body=f"{bucket},ok\n{bucket},caf\xe9\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=rf"manifest s3://{bucket}/latin1.csv: not UTF-8 text"):
        list(open_manifest(s3, f"s3://{bucket}/latin1.csv"))


def test_open_sidecar_errors_name_the_sidecar(s3, make_bucket):
    bucket = make_bucket("man")
    s3.put_object(Bucket=bucket, Key="m.csv", Body=f"{bucket},a\n{bucket},b\n".encode())
    s3.put_object(Bucket=bucket, Key="m.csv.sizes", Body=b"7\n")
    with pytest.raises(ManifestError) as raised:
        list(open_manifest(s3, f"s3://{bucket}/m.csv"))
    assert str(raised.value) == (
        f"manifest s3://{bucket}/m.csv line 2: "
        f"no size for this row: manifest s3://{bucket}/m.csv.sizes ends after 1 sizes"
    )


def test_open_missing_manifest_or_bucket_names_uri_and_code(s3, make_bucket):
    bucket = make_bucket("man")
    with pytest.raises(ManifestError) as raised:
        list(open_manifest(s3, f"s3://{bucket}/nope.csv"))
    assert str(raised.value) == f"manifest s3://{bucket}/nope.csv: cannot read s3://{bucket}/nope.csv: NoSuchKey"
    with pytest.raises(ManifestError, match=r"cannot read s3://no-such-bucket-mx/m\.csv: NoSuchBucket"):
        list(open_manifest(s3, "s3://no-such-bucket-mx/m.csv"))


def test_open_propagates_sidecar_errors_other_than_404():
    class Forbidden(_StubS3):
        def get_object(self, Bucket, Key):
            if Key.endswith(SIZES_SUFFIX):
                raise ClientError(
                    {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject"
                )
            return super().get_object(Bucket, Key)

    with pytest.raises(ClientError, match="AccessDenied"):
        list(open_manifest(Forbidden({"m.csv": b"bkt,a\n"}), "s3://bkt/m.csv"))


class _CountingS3:
    """Fixed objects with their ``ContentLength`` (a 404 for anything else), counting the GETs of each key and
    keeping every body handed out; with ``together``, each GET waits for the next one before answering."""

    def __init__(self, objects: dict[str, bytes], together: threading.Barrier | None = None,
                 refused: str | None = None) -> None:
        self.objects, self.together, self.refused = objects, together, refused
        self.gets: dict[str, int] = {}
        self.bodies: list[io.BytesIO] = []

    def get_object(self, Bucket, Key):
        self.gets[Key] = self.gets.get(Key, 0) + 1
        if self.together is not None:
            self.together.wait()
        if Key == self.refused:
            raise ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                              "GetObject")
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}},
                              "GetObject")
        self.bodies.append(io.BytesIO(self.objects[Key]))
        return {"Body": self.bodies[-1], "ContentLength": len(self.objects[Key])}


@pytest.mark.parametrize("sidecar", [b"1\n2\n", None])
def test_a_small_manifest_read_twice_is_asked_for_once(sidecar):
    objects = {"m.csv": b"bkt,a\nbkt,b\n", **({"m.csv.sizes": sidecar} if sidecar else {})}
    client = _CountingS3(objects)
    manifest = Manifest(client, "s3://bkt/m.csv")
    sizes = [1, 2] if sidecar else [None, None]

    assert list(manifest.sizes()) == sizes
    assert [(row.key, row.size) for row in manifest.rows()] == list(zip("ab", sizes))
    assert [(row.key, row.size) for row in manifest.rows()] == list(zip("ab", sizes))
    assert client.gets == {"m.csv": 1, "m.csv.sizes": 1}  # the missing sidecar too
    assert all(body.closed for body in client.bodies)


def test_a_manifest_over_the_kept_size_is_asked_for_at_each_pass(monkeypatch):
    monkeypatch.setattr(manifest_module, "KEEP_BYTES", 3)
    client = _CountingS3({"m.csv": b"bkt,a\nbkt,b\n", "m.csv.sizes": b"1\n2\n"})
    manifest = Manifest(client, "s3://bkt/m.csv")

    assert list(manifest.sizes()) == [1, 2]
    assert [(row.key, row.size) for row in manifest.rows()] == [("a", 1), ("b", 2)]
    assert client.gets == {"m.csv": 2, "m.csv.sizes": 2}
    assert all(body.closed for body in client.bodies)  # the first pass's manifest too, which it did not read


@pytest.mark.parametrize("first_pass", ["sizes", "rows"])
def test_a_pass_asks_for_the_manifest_and_its_sidecar_at_once(first_pass):
    client = _CountingS3({"m.csv": b"bkt,a\n", "m.csv.sizes": b"1\n"}, together=threading.Barrier(2, timeout=30))
    assert list(getattr(Manifest(client, "s3://bkt/m.csv"), first_pass)())  # the barrier breaks if asked in turn
    assert client.gets == {"m.csv": 1, "m.csv.sizes": 1}


@pytest.mark.parametrize("refused", ["m.csv", "m.csv.sizes"])
def test_an_error_other_than_404_propagates_and_closes_the_other_body(refused, monkeypatch):
    monkeypatch.setattr(manifest_module, "KEEP_BYTES", 0)  # streamed bodies, left open unless closed
    client = _CountingS3({"m.csv": b"bkt,a\n", "m.csv.sizes": b"1\n"}, refused=refused)
    for read in (Manifest(client, "s3://bkt/m.csv").sizes, Manifest(client, "s3://bkt/m.csv").rows):
        with pytest.raises(ClientError, match="AccessDenied"):
            list(read())
    assert len(client.bodies) == 2 and all(body.closed for body in client.bodies)


@pytest.mark.parametrize("uri", ["bkt/m.csv", "s3://bkt", "s3://bkt/"])
def test_bad_uris_are_rejected(uri):
    with pytest.raises(ValueError, match="URI"):
        list(open_manifest(None, uri))


# --- streaming --------------------------------------------------------------------------------------



STREAM_MILLION_ROWS = """
import json, resource, sys
from mxtransfer_worker.manifest import ManifestRow, read_manifest, write_manifest
manifest, sizes, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
generated = (ManifestRow("src-bucket", f"media/season-{i % 97:02d}/episode {i:07d}+cut.mov", None, i) for i in range(rows))
with open(manifest, "w", encoding="utf-8", newline="") as out, open(sizes, "w", encoding="utf-8") as sizes_out:
    stats = write_manifest(generated, out, sizes_out)
count = total = 0
with open(manifest, encoding="utf-8", newline="") as lines, open(sizes, newline="") as size_lines:
    for row in read_manifest(lines, size_lines):
        count += 1
        total += row.size
        last = row
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"written": [stats.rows, stats.bytes], "read": [count, total, last.line],
                  "growth": (peak - baseline) * 1024}))
"""


def test_million_rows_stream_through_write_and_read_in_bounded_memory(tmp_path):
    """1M distinct rows go through write_manifest and read_manifest as iterators, with a sizes sidecar, in a
    fresh process whose peak resident memory grows by far less than holding the rows would take (a list of 1M
    such rows costs about 200 MB)."""
    rows = 1_000_000
    completed = subprocess.run(
        [sys.executable, "-c", STREAM_MILLION_ROWS, str(tmp_path / "m.csv"), str(tmp_path / "m.csv.sizes"), str(rows)],
        capture_output=True, text=True, check=True)
    measured = json.loads(completed.stdout)
    expected_bytes = rows * (rows - 1) // 2
    assert measured["written"] == [rows, expected_bytes]
    assert measured["read"] == [rows, expected_bytes, rows]
    assert measured["growth"] < 40 * 1024 * 1024, f"peak RSS grew by {measured['growth']:,} bytes"