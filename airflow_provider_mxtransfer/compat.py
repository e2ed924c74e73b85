"""Airflow names that ``airflow.providers.common.compat.sdk`` lacks in the oldest compat the provider supports.

common-compat 1.9.0 (what the Airflow 2.10 line of MWAA resolves to) has no ``conf``; Airflow 3 wants the task
SDK's configuration, which the compat layer gives there. ``AirflowException`` is not in compat 1.9.0 either; it
is imported from ``airflow.exceptions``, which is the same class on Airflow 3.

``asset_alias_registered``: Airflow 2.10 fails a task that adds an event to a dataset alias missing from the
metadata database (``Can't flush None value found in collection DatasetModel.aliases``), which is the case
when a DAG runs with ``dag.test()`` without the scheduler having parsed it; Airflow 3's ``dag.test()`` syncs the
DAG first.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException

try:
    from airflow.providers.common.compat.sdk import conf
except ImportError:  # common-compat < 1.10 (Airflow 2.10): Airflow 2's own configuration
    from airflow.configuration import conf

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS


def asset_alias_registered(name: str) -> bool:
    """Whether an event may be added to the asset alias ``name``: always on Airflow 3; on Airflow 2, when the
    dataset alias is in the metadata database."""
    if AIRFLOW_V_3_0_PLUS:
        return True
    from airflow.models.dataset import DatasetAliasModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(select(DatasetAliasModel.id).where(DatasetAliasModel.name == name)) is not None


__all__ = ["AirflowException", "asset_alias_registered", "conf"]
