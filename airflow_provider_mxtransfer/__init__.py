"""Apache Airflow provider for mxtransfer: large-scale server-side S3 copies."""

__version__ = "0.1.0"

_PACKAGE = "airflow_provider_mxtransfer"


def get_provider_info() -> dict:
    """Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "airflow-provider-mxtransfer",
        "name": "mxtransfer",
        "description": "Copy very many and very large objects between S3 buckets, server-side.",
        "versions": [__version__],
        "integrations": [{"integration-name": "mxtransfer", "external-doc-url": "https://aws.amazon.com/batch/",
                          "tags": ["aws"]}],
        "operators": [{"integration-name": "mxtransfer", "python-modules": [
            f"{_PACKAGE}.operators.copy", f"{_PACKAGE}.operators.inventory", f"{_PACKAGE}.operators.cleanup"]}],
        "sensors": [{"integration-name": "mxtransfer", "python-modules": [f"{_PACKAGE}.sensors.fleet"]}],
        "hooks": [{"integration-name": "mxtransfer", "python-modules": [
            f"{_PACKAGE}.hooks.s3copy", f"{_PACKAGE}.hooks.s3control"]}],
        "triggers": [{"integration-name": "mxtransfer", "python-modules": [f"{_PACKAGE}.triggers.fleet"]}],
        "extra-links": [
            f"{_PACKAGE}.links.transfer.TransferBatchJobLink",
            f"{_PACKAGE}.links.transfer.TransferLogsLink",
            f"{_PACKAGE}.links.transfer.S3BatchOperationsJobLink",
            f"{_PACKAGE}.links.transfer.TransferDestinationLink",
            f"{_PACKAGE}.links.transfer.TransferReportLink",
        ],
        # The classes each module above provides, for readers and `airflow providers` listings.
        "classes": [
            f"{_PACKAGE}.operators.copy.S3BatchCopyOperator",
            f"{_PACKAGE}.operators.inventory.GenerateInventoryOperator",
            f"{_PACKAGE}.operators.cleanup.AbortStaleUploadsOperator",
            f"{_PACKAGE}.sensors.fleet.BatchFleetSensor",
            f"{_PACKAGE}.hooks.s3copy.S3CopyHook",
            f"{_PACKAGE}.hooks.s3control.S3ControlHook",
            f"{_PACKAGE}.triggers.fleet.BatchFleetTrigger",
        ],
    }
