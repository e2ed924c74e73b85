"""Apache Airflow provider for mxtransfer: large-scale server-side S3 copies."""

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "airflow-provider-mxtransfer",
        "name": "mxtransfer",
        "description": "Copy very many and very large objects between S3 buckets, server-side.",
        "versions": [__version__],
    }
