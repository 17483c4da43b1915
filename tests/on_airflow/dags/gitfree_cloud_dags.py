"""DAGs of the Azure/GCS and by-reference Airflow tests (tests/on_airflow/test_cloud_dags.py), run with
``airflow dags test``; paths and the source URL come from the run's conf."""

from __future__ import annotations

from airflow.sdk import dag

from gitfree.airflow import GitfreeCommitOperator, GitfreeMaterializeOperator, GitfreePullOperator


@dag(schedule=None, params={"source": "", "dest": ""})
def gitfree_cloud() -> None:
    """Commit and pull through the connection ``gitfree_cloud`` (the test points it at Azurite or fake-gcs-server)."""
    commit = GitfreeCommitOperator(
        task_id="commit", dataset="demo/cloud", path="{{ params.source }}", gitfree_conn_id="gitfree_cloud"
    )
    pull = GitfreePullOperator(
        task_id="pull",
        ref="{{ ti.xcom_pull('commit')['ref'] }}",
        dest="{{ params.dest }}",
        overwrite=True,
        gitfree_conn_id="gitfree_cloud",
    )
    commit >> pull


@dag(schedule=None, params={"source": "", "dest": ""})
def gitfree_by_reference() -> None:
    """Version a source prefix where it is, pull the version, then copy it into the store."""
    imported = GitfreeCommitOperator(
        task_id="import",
        dataset="demo/landed",
        path="{{ params.source }}",
        by_reference=True,
        message="imported by {{ run_id }}",
    )
    pull = GitfreePullOperator(
        task_id="pull", ref="{{ ti.xcom_pull('import')['ref'] }}", dest="{{ params.dest }}", overwrite=True
    )
    keep = GitfreeMaterializeOperator(task_id="keep", ref="{{ ti.xcom_pull('import')['ref'] }}")
    imported >> pull >> keep


gitfree_cloud()
gitfree_by_reference()
