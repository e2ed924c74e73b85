"""mxtransfer's copy engine: manifests, planning, server-side S3 copies, shard runs and reports.

Imports botocore and awscrt (boto3 in the Lambda driver), never Airflow: the same code runs in the AWS Batch worker
image, in the S3 Batch Operations driver Lambda and inside the Airflow provider's ``local`` backend.
"""
