"""What AWS Batch's compute environment does behind one job queue of moto's Batch, for end-to-end tests.

moto's Batch without Docker marks every job SUCCEEDED the moment it is submitted and runs nothing. For the jobs
of one queue, ``BatchCompute`` instead keeps them RUNNABLE until ``release()`` (so a transfer can be watched, and
its task cleared, while its fleet is in flight), then runs each array child's command, the worker's command line,
in a process of its own with ``AWS_BATCH_JOB_ARRAY_INDEX`` set, as the container would, and marks it SUCCEEDED
or FAILED by its exit code. A terminated job ends FAILED, as in AWS Batch. moto's server must run in this
process (``tests/conftest.py``'s ``s3_server``): its Batch state is read and changed directly.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

from moto.batch_simple.models import BatchSimpleBackend

WORKER = str(Path(sys.executable).parent / "mxtransfer-worker")


class BatchCompute:
    """Runs the jobs submitted to ``queue_name`` with ``environment`` (endpoint, credentials) once released."""

    def __init__(self, queue_name: str, environment: dict[str, str]) -> None:
        self.queue_name = queue_name
        self.environment = environment
        self.submitted: list = []  # parent (or single) jobs, in submission order
        self.released = threading.Event()
        self._pending: list = []
        self._lock = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"batch-compute-{queue_name}", daemon=True)

    def install(self, monkeypatch) -> BatchCompute:
        """Take over the queue's jobs from moto's simple Batch (undone by ``monkeypatch``) and start running."""
        original = BatchSimpleBackend._mark_job_as_finished
        compute = self

        def hold_or_finish(backend, include_start_attempt: bool, job) -> None:
            if job.job_queue.name != compute.queue_name:
                return original(backend, include_start_attempt, job)
            backend.backend._jobs[job.job_id] = job
            job.job_started_at = datetime.now()
            job.log_stream_name = job._stream_name
            if include_start_attempt:
                job._start_attempt()
            job.status = "RUNNABLE"
            if ":" not in job.job_id:  # a parent or single job; children are found through it when it runs
                compute._submit(job)

        monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", hold_or_finish)
        self._thread.start()
        return self

    def release(self) -> None:
        """Start running the jobs held so far, and every later one as soon as it is submitted."""
        self.released.set()
        with self._lock:
            self._lock.notify_all()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(60)

    def jobs_named(self, name: str) -> list:
        return [job for job in self.submitted if job.job_name == name]

    def _submit(self, job) -> None:
        with self._lock:
            self.submitted.append(job)
            self._pending.append(job)
            self._lock.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait(0.2)
                if self._stopping:
                    return
                for job in [job for job in self._pending if job.stop]:  # terminated before it ran
                    self._pending.remove(job)
                    _finish(job, [False] * len(job._child_jobs or [job]))
                if not self.released.is_set() or not self._pending:
                    continue
                job = self._pending.pop(0)
            self._execute(job)

    def _execute(self, job) -> None:
        children = job._child_jobs or [job]
        for each in {job, *children}:
            each.status = "RUNNING"
        command = job.describe()["container"]["command"]
        outcomes = []
        for index, child in enumerate(children):
            if job.stop:
                outcomes.append(False)
                continue
            done = subprocess.run([WORKER, *command[1:]], env={**self.environment,
                                                               "AWS_BATCH_JOB_ARRAY_INDEX": str(index)},
                                  capture_output=True, text=True, timeout=600)
            outcomes.append(done.returncode == 0)
            if done.returncode:
                child.job_stopped_reason = f"worker exited with {done.returncode}: {done.stderr[-500:]}"
        _finish(job, outcomes)


def _finish(job, outcomes: list[bool]) -> None:
    """Mark the children (or the single job) by ``outcomes`` and the parent by all of them."""
    if job._child_jobs:
        for child, succeeded in zip(job._child_jobs, outcomes):
            child._mark_stopped(success=succeeded)
    job._mark_stopped(success=all(outcomes))
