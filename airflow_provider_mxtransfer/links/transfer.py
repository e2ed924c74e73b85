"""Console links of a transfer, stored in XCom with ``persist`` like the Amazon provider's links."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

#: The log group AWS Batch writes container logs to unless the job definition names another.
BATCH_LOG_GROUP = "/aws/batch/job"


class TransferBatchJobLink(BaseAwsLink):
    """The transfer's AWS Batch (array) job."""

    name = "Transfer Batch Job"
    key = "mxtransfer_batch_job"
    format_str = BASE_AWS_CONSOLE_LINK + "/batch/home?region={region_name}#jobs/detail/{job_id}"


class TransferLogsLink(BaseAwsLink):
    """The CloudWatch logs of the transfer's workers: a ``log_url`` stored as is (a failed shard's stream),
    else ``log_group`` and optionally ``log_stream``."""

    name = "Transfer Logs"
    key = "mxtransfer_logs"
    format_str = BASE_AWS_CONSOLE_LINK + "/cloudwatch/home?region={region_name}#logsV2:log-groups/log-group/{log_group}"

    def format_link(self, **kwargs) -> str:
        if kwargs.get("log_url"):
            return kwargs["log_url"]
        link = super().format_link(**{**kwargs, "log_group": quote_plus(kwargs.get("log_group") or BATCH_LOG_GROUP)})
        stream = kwargs.get("log_stream")
        return f"{link}/log-events/{quote_plus(stream)}" if link and stream else link


class S3BatchOperationsJobLink(BaseAwsLink):
    """The transfer's S3 Batch Operations job."""

    name = "S3 Batch Operations Job"
    key = "mxtransfer_s3_batch_operations_job"
    format_str = BASE_AWS_CONSOLE_LINK + "/s3/jobs/{job_id}?region={region_name}"


class TransferDestinationLink(BaseAwsLink):
    """The destination prefix in the S3 console."""

    name = "Transfer Destination"
    key = "mxtransfer_destination"
    format_str = BASE_AWS_CONSOLE_LINK + "/s3/buckets/{bucket}?region={region_name}&prefix={prefix}"

    def format_link(self, **kwargs) -> str:
        return super().format_link(**{**kwargs, "prefix": quote(kwargs.get("prefix", ""), safe="")})


class TransferReportLink(BaseAwsLink):
    """The transfer's HTML report (``transfer.html`` under its report prefix) in the S3 console, whose object
    page opens or downloads it; it is written when the transfer has been judged."""

    name = "Transfer Report"
    key = "mxtransfer_report"
    format_str = BASE_AWS_CONSOLE_LINK + "/s3/object/{bucket}?region={region_name}&prefix={object_key}"

    def format_link(self, **kwargs) -> str:
        return super().format_link(**{**kwargs, "object_key": quote(kwargs.get("object_key", ""), safe="")})


def log_url(region_name: str, log_group: str, log_stream: str, aws_partition: str = "aws") -> str:
    """The console URL of one CloudWatch log stream (for failure messages)."""
    return TransferLogsLink().format_link(region_name=region_name, log_group=log_group, log_stream=log_stream,
                                          aws_domain=BaseAwsLink.get_aws_domain(aws_partition))


#: Every link a transfer task may show.
TRANSFER_LINKS = (TransferBatchJobLink(), TransferLogsLink(), S3BatchOperationsJobLink(), TransferDestinationLink(),
                  TransferReportLink())
