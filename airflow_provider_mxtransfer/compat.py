"""Airflow names that ``airflow.providers.common.compat.sdk`` lacks in the oldest compat the provider supports.

common-compat 1.9.0 (what the Airflow 2.10 line of MWAA resolves to) has no ``conf``; Airflow 3 wants the task
SDK's configuration, which the compat layer gives there. ``AirflowException`` is not in compat 1.9.0 either; it
is imported from ``airflow.exceptions``, which is the same class on Airflow 3.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException

try:
    from airflow.providers.common.compat.sdk import conf
except ImportError:  # common-compat < 1.10 (Airflow 2.10): Airflow 2's own configuration
    from airflow.configuration import conf

__all__ = ["AirflowException", "conf"]
