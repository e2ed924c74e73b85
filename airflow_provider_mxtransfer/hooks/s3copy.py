"""An S3 hook whose client is configured like the copy engine's (standard retries, a large connection pool)."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from mxtransfer_worker.s3client import make_s3_client


class S3CopyHook(AwsBaseHook):
    """Credentials, region and endpoint from an Airflow AWS connection; S3 clients from the copy engine.

    The connection's ``endpoint_url`` extra (or ``service_config.s3.endpoint_url``) is honoured, and so is
    boto3's ``AWS_ENDPOINT_URL``; ``verify`` applies as on every AWS hook.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["client_type"] = "s3"
        super().__init__(*args, **kwargs)

    def get_copy_client(self, max_pool_connections: int = 16):
        """A boto3 S3 client for the engine, with a pool of ``max_pool_connections`` connections."""
        return make_s3_client(
            max_pool_connections=max_pool_connections,
            endpoint_url=self.conn_config.get_service_endpoint_url(service_name="s3"),
            region_name=self.region_name,
            session=self.get_session(region_name=self.region_name),
            verify=self.verify,
        )
