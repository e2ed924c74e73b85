"""Extra links shown in the Airflow UI for transfers: the AWS Batch job, its logs, the S3 Batch Operations job
and the destination prefix in the S3 console."""
