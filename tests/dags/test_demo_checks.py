"""The demo's verification catches what it must: missing objects, other bytes of the same size, lost metadata."""

from __future__ import annotations

from demo.scenario import seed, verify


def test_verify_names_each_missing_or_different_object(s3):
    config = seed(s3, objects_per_provider=3, big_object_bytes=0)
    destination = config["destination"]["bucket"]
    for entry in config["providers"]:
        for item in s3.list_objects_v2(Bucket=entry["source_bucket"], Prefix="exports/")["Contents"]:
            s3.copy_object(Bucket=destination, Key=entry["destination_prefix"] + item["Key"][len("exports/"):],
                           CopySource={"Bucket": entry["source_bucket"], "Key": item["Key"]})
    assert verify(s3, config) == (9, [])

    first, second, third = config["providers"]
    keys = [item["Key"][len("exports/"):] for item in
            s3.list_objects_v2(Bucket=first["source_bucket"], Prefix="exports/")["Contents"]]
    s3.delete_object(Bucket=destination, Key=first["destination_prefix"] + keys[0])
    original = s3.get_object(Bucket=second["source_bucket"], Key="exports/" + keys[0])["Body"].read()
    s3.put_object(Bucket=destination, Key=second["destination_prefix"] + keys[0], Body=bytes(len(original)),
                  ContentType="video/quicktime", Metadata={"provider": second["name"], "origin-key": "x"})
    s3.put_object(Bucket=destination, Key=third["destination_prefix"] + keys[1], Body=original[:1])

    checked, problems = verify(s3, config)
    assert checked == 9 and len(problems) == 4
    assert "missing at the destination" in problems[0] and keys[0] in problems[0]
    assert any("content differs (SHA-256)" in problem for problem in problems)
    assert any("Metadata is" in problem for problem in problems)
    assert any("bytes instead of" in problem and third["destination_prefix"] in problem for problem in problems)
