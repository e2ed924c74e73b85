"""Hooks: AWS clients built from Airflow connections."""
