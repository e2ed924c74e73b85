"""A hook for S3 Control, the API of S3 Batch Operations jobs (``create_job``, ``describe_job``, ...)."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook


class S3ControlHook(AwsBaseHook):
    """Credentials, region and endpoint from an Airflow AWS connection; ``conn`` is a boto3 ``s3control``
    client. S3 Control requests name the account (``AccountId``): ``account_id`` gives the connection's own
    (from STS ``GetCallerIdentity``)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["client_type"] = "s3control"
        super().__init__(*args, **kwargs)
