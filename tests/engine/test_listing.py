"""``listing.ParallelLister``: many prefixes, and ranges of one, listed at once through awscrt, against moto's
server (and the S3 emulator where said)."""

from __future__ import annotations

import os
import sys

import pytest
from awscrt.exceptions import AwsCrtError

from mxtransfer_worker.inventory import ListingCounts, ObjectFilter, select_listed
from mxtransfer_worker.listing import ListingError, ParallelLister, list_prefix
from mxtransfer_worker.s3client import make_s3_client
from mxtransfer_worker.s3uri import S3Uri

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from benchmarks.s3emulator import S3Emulator  # noqa: E402

#: Loose keys, nested prefixes, an empty-named level and keys that need URL encoding in the listing.
KEYS = (["top-a", "top-z", "a//double", "a/b/c/deep", "ünï/çødé", "sp ace/1+1", "tab\there/x", "100%/y"]
        + [f"p{index % 3}/sub{index % 2}/{index:03d}" for index in range(30)])


@pytest.fixture
def bucket(s3, make_bucket):
    name = make_bucket("src")
    for index, key in enumerate(KEYS):
        s3.put_object(Bucket=name, Key=key, Body=b"x" * index)
    return name


@pytest.mark.parametrize("concurrency", [1, 2, 64])
def test_lists_every_key_once_with_sizes_and_etags(s3, bucket, concurrency):
    listed = list(ParallelLister(s3, concurrency).objects(S3Uri(bucket, "")))
    assert sorted(item.key for item in listed) == sorted(KEYS)
    by_key = {item.key: item for item in listed}
    for reference in list_prefix(s3, S3Uri(bucket, "")):
        assert (by_key[reference.key].size, by_key[reference.key].etag, by_key[reference.key].last_modified) == \
            (reference.size, reference.etag, reference.last_modified)


def test_keys_of_one_prefix_come_in_key_order(s3, bucket):
    listed = [item.key for item in ParallelLister(s3, 8).objects(S3Uri(bucket, "p1/"))]
    assert sorted(listed) == sorted(key for key in KEYS if key.startswith("p1/"))
    for sub in ("p1/sub0/", "p1/sub1/"):
        part = [key for key in listed if key.startswith(sub)]
        assert part == sorted(part) and part


def test_pages_continue_across_partitions(s3, make_bucket):
    """More keys than a page (moto's pages hold 1,000 keys), in a flat prefix and two nested ones."""
    name = make_bucket("big")
    keys = [f"flat/{index:05d}" for index in range(1100)] + [f"n/{index % 2}/{index:05d}" for index in range(40)]
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=b"")
    listed = [item.key for item in ParallelLister(s3, 4).objects(S3Uri(name, ""))]
    assert len(listed) == len(keys) and set(listed) == set(keys)


def test_select_listed_in_parallel_filters_and_counts_like_the_sequential_listing(s3, bucket):
    selected = ObjectFilter(include=("*/sub1/*",), min_size=10)
    counts, parallel_counts = ListingCounts(), ListingCounts()
    sequential = list(select_listed(s3, [S3Uri(bucket, "")], selected, counts))
    parallel = list(select_listed(s3, [S3Uri(bucket, "")], selected, parallel_counts, concurrency=16))
    assert sorted(parallel, key=lambda row: row.key) == sequential and len(sequential) > 5
    assert parallel_counts == counts


def test_missing_bucket_is_named(s3):
    with pytest.raises(ListingError, match="cannot list s3://no-such-bucket-here/p/: NoSuchBucket") as caught:
        list(ParallelLister(s3, 4).objects(S3Uri("no-such-bucket-here", "p/")))
    assert caught.value.permanent


#: Keys that sort around the points where a flat prefix is split (the last key of a page cut where the page's
#: keys differ, with a later digit or letter there), common prefixes named like those points, and keys that need
#: XML escaping or URL encoding.
SPLIT_KEYS = ([f"f/{index:04d}" for index in range(0, 120, 3)]
              + ["f/0", "f/00", "f/0002", "f/0002a", "f/0002é", "f/0009~", "f/000:", "f/001", "f/01", "f/1", "f/2",
                 "f/2/x", "f/2/y", "f/3/", "f/9", "f/9z", "f/A", "f/Z", "f/Z/z", "f/a", "f/z", "f/z~", "f/~", "f/é",
                 "f/€", "f/😀", "f/a&b<c>", 'f/q"\'', "f/sp ace+plus", "f/%41", "f/tab\there"]
              + ["0", "1", "10", "2a", "z"])


@pytest.fixture(params=["moto", "emulator"])
def split_bucket(request, s3):
    """A bucket of ``SPLIT_KEYS`` and a client for it: on moto's server, then on the S3 emulator."""
    if request.param == "moto":
        client = s3
    else:
        emulator = S3Emulator(copy_bandwidth=0, write_rate=0, read_rate=0)
        request.addfinalizer(emulator.stop)
        client = make_s3_client(endpoint_url=emulator.start())
    name = f"split-{request.param}"
    client.create_bucket(Bucket=name)
    for index, key in enumerate(SPLIT_KEYS):
        client.put_object(Bucket=name, Key=key, Body=b"x" * (index % 7))
    return client, name


@pytest.mark.parametrize("concurrency, page_keys", [(1, 3), (4, 2), (64, 1), (64, 3), (64, 1000)])
@pytest.mark.parametrize("prefix", ["", "f/"])
def test_ranges_of_a_prefix_list_every_key_once(split_bucket, concurrency, page_keys, prefix):
    client, name = split_bucket
    lister = ParallelLister(client, concurrency, page_keys)
    sent, send = [], lister._send
    lister._send = lambda bucket, partition, *args: sent.append(partition) or send(bucket, partition, *args)
    listed = list(lister.objects(S3Uri(name, prefix)))
    reference = list(list_prefix(client, S3Uri(name, prefix)))
    assert sorted(listed) == reference and len(reference) == sum(key.startswith(prefix) for key in SPLIT_KEYS)
    ranges = {(partition.prefix, partition.after) for partition in sent if partition.after}
    assert bool(ranges) == (concurrency > 1 and page_keys < len(reference)), ranges


_ANSWER = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix></Prefix><NextContinuationToken>1u+Gc/x=</NextContinuationToken>
  <KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>{encoding}<IsTruncated>true</IsTruncated>
  <Contents>
    <Key>{key}</Key><LastModified>2026-11-26T04:50:10.000Z</LastModified><ETag>&quot;8a39&quot;</ETag>
    <ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><Size>12</Size><Owner><ID>x</ID></Owner>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents><Size>0</Size><ETag>"e"</ETag><Key>z</Key><LastModified>2026-11-26T04:50:11Z</LastModified></Contents>
  <CommonPrefixes><Prefix>{prefix}</Prefix></CommonPrefixes>
</ListBucketResult>"""


@pytest.mark.parametrize("encoding, key, prefix, expected_key, expected_prefix", [
    ("<EncodingType>url</EncodingType>", "run+books/a%2Bb%26%C3%A9", "run+books/", "run books/a+b&é", "run books/"),
    ("", "a&amp;b&lt;c&gt;&#x1F600;&#233;%41+&apos;", "p&amp;q/", "a&b<c>😀é%41+'", "p&q/"),
])
def test_answers_are_read_as_xml_and_decoded_as_botocore_does(s3, encoding, key, prefix, expected_key,
                                                               expected_prefix):
    """S3's ``+`` for a space and ``%2B`` for a plus under ``EncodingType`` url; without it, keys as they are,
    with XML's references resolved; any order of the fields, with or without white space and quotes escaped."""
    answer = _ANSWER.format(encoding=encoding, key=key, prefix=prefix).encode()
    page = ParallelLister(s3, 1)._page(S3Uri("b", ""), answer)
    assert [(item.key, item.size, item.etag, item.last_modified.isoformat()) for item in page.objects] == [
        (expected_key, 12, '"8a39"', "2026-11-26T04:50:10+00:00"), ("z", 0, '"e"', "2026-11-26T04:50:11+00:00")]
    assert (page.prefixes, page.token) == ([expected_prefix], "1u+Gc/x=")


def test_a_throttle_that_outlasts_awscrts_retries_is_named_as_s3_names_it(s3):
    """awscrt gives up on a throttled page with an error of its own naming: the listing's error says S3's
    SlowDown, and it is temporary (a later attempt may list it); other awscrt errors keep their name."""
    lister = ParallelLister(s3, 1)
    with pytest.raises(ListingError, match=r"^cannot list s3://b/p/: SlowDown: AWS_ERROR_S3_SLOW_DOWN") as raised:
        lister._page(S3Uri("b", "p/"), AwsCrtError(14342, "AWS_ERROR_S3_SLOW_DOWN", "Response code indicates throttling"))
    assert not raised.value.permanent
    with pytest.raises(ListingError, match=r"^cannot list s3://b/p/: AWS_IO_SOCKET_CLOSED: closed"):
        lister._page(S3Uri("b", "p/"), AwsCrtError(1051, "AWS_IO_SOCKET_CLOSED", "closed"))


def test_an_answer_that_is_not_a_listing_is_an_error(s3):
    lister = ParallelLister(s3, 1)
    with pytest.raises(ListingError, match="not S3's ListBucketResult"):
        lister._page(S3Uri("b", ""), _ANSWER.format(encoding="", key="k", prefix="p/").replace("<Size>0</Size>", "")
                     .encode())
    with pytest.raises(ListingError, match="cannot list s3://b/: InternalError: We encountered an internal error"):
        lister._page(S3Uri("b", ""), b'<?xml version="1.0"?>\n<Error><Code>InternalError</Code><Message>We '
                                     b'encountered an internal error</Message></Error>')
