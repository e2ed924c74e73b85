"""Triggers: asynchronous waits on transfers, run by the Airflow triggerer for deferred tasks."""
