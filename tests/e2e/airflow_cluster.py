"""A real Airflow 3 on 127.0.0.1 for end-to-end tests: scheduler (LocalExecutor), DAG processor, triggerer and
API server as separate processes, with their own AIRFLOW_HOME and sqlite database in a temporary folder, and a
small client of the REST API (``/api/v2``) authenticated as a user of the simple auth manager.

sqlite is enough here: ``airflow standalone`` runs the same four processes on sqlite with the LocalExecutor
(``airflow/cli/commands/standalone_command.py``), so nothing has to be installed for it. Every process is
started in a session of its own and its whole process group is ended by ``stop``, also when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

AIRFLOW = str(Path(sys.executable).parent / "airflow")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
USER = "mxtransfer"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AirflowCluster:
    """Airflow's four processes on ``home`` (a temporary folder) with ``dags_folder`` as the DAG bundle.

    ``environment`` is added to every process's environment (connections as ``AIRFLOW_CONN_*``, the DAGs'
    settings; a value of None removes the variable); variables of the calling process starting with
    ``AIRFLOW`` are not passed on, so the test process's own Airflow settings never leak in. ``all_admins`` lets anyone in without logging in (for a
    browser taking screenshots); otherwise the REST client logs in as ``USER`` with a generated password.
    """

    def __init__(self, home: Path, dags_folder: Path, environment: dict[str, str | None], all_admins: bool = False):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.processes: dict[str, subprocess.Popen] = {}
        self._token = ""
        self.all_admins = all_admins
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({USER: self.password}))
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        settings = {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            # parsing a DAG file takes seconds, but far longer on a loaded machine: no parse timeouts to trip on
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
            # only runs the test triggers: no daily run appears because the scheduler saw the DAG
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            # one secret for every process: the scheduler signs the tokens that tasks show the API server
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": str(all_admins),
            **environment,
        }
        self.environment = {name: value for name, value in settings.items() if value is not None}

    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 240) -> None:
        """Create the database, start the processes and wait until the API server reports every one healthy."""
        self._run("db", "migrate")
        for name in COMPONENTS:
            with open(self.home / f"{name}.log", "wb") as log:
                self.processes[name] = subprocess.Popen([AIRFLOW, name], env=self.environment, cwd=self.home,
                                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for("every Airflow component healthy", self._healthy, timeout)

    def stop(self, grace: float = 20) -> None:
        """End every process group this cluster started: SIGTERM, then SIGKILL after ``grace`` seconds."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # also what the process itself left behind
            process.wait()

    def _run(self, *arguments: str) -> None:
        done = subprocess.run([AIRFLOW, *arguments], env=self.environment, cwd=self.home, capture_output=True,
                              text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(arguments)} failed: {done.stdout[-2000:]}{done.stderr[-3000:]}")

    def _healthy(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}:\n{self.log_tail(name)}")
        try:
            health = self.request("GET", "/api/v2/monitor/health", authenticated=False)
        except OSError:
            return False
        return all(health.get(part, {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

    def log_tail(self, name: str, characters: int = 4000) -> str:
        """The end of a process's output (for failure messages)."""
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-characters:] if path.exists() else ""

    def logs(self) -> str:
        """The end of every process's output, and the scheduler's and triggerer's warnings and errors (a stall's
        cause is often minutes before the end of the output)."""
        tails = "\n".join(f"--- {name} ---\n{self.log_tail(name)}" for name in COMPONENTS)
        return f"{tails}\n{self.log_problems('scheduler')}\n{self.log_problems('triggerer')}"

    def log_problems(self, name: str, lines: int = 60) -> str:
        """The last ``lines`` lines of a process's output at warning or error level, or naming a retry."""
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        found = [line[:600] for line in text.splitlines()
                 if re.search(r"\[(warning|error|critical)|up_for_retry|Traceback|not found", line)]
        return f"--- {name}: warnings and errors ---\n" + "\n".join(found[-lines:])

    def token(self) -> str:
        """A JWT for the REST API: ``POST /auth/token`` with the user's name and password (``GET`` when everyone
        is an admin)."""
        if not self._token and self.all_admins:
            self._token = self.request("GET", "/auth/token", authenticated=False)["access_token"]
        if not self._token:
            answer = self.request("POST", "/auth/token", {"username": USER, "password": self.password},
                                  authenticated=False)
            self._token = answer["access_token"]
        return self._token

    def request(self, method: str, path: str, body: dict | None = None, authenticated: bool = True) -> dict:
        """Call the API server; returns the JSON answer, raises ``RuntimeError`` with the answer on an HTTP error."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authenticated:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: HTTP {error.code}: {error.read()[:2000]!r}") from None
        return json.loads(text) if text else {}

    def wait_for(self, what: str, condition, timeout: float, interval: float = 1.0, describe=None):
        """Call ``condition`` until it returns something true (returned), failing after ``timeout`` seconds with
        ``describe()`` (if given) and the processes' logs."""
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                state = f"{describe()}\n" if describe else ""
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{state}{self.logs()}")
            time.sleep(interval)

    # REST API helpers

    def task_instances(self, dag_id: str, run_id: str) -> dict[tuple[str, int], dict]:
        """The run's task instances by (task id, map index)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=1000"
        return {(ti["task_id"], ti["map_index"]): ti for ti in self.request("GET", path)["task_instances"]}

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict:
        """Wait until the run is finished (success or failed) and return it."""
        return self.wait_for(f"run {run_id} of {dag_id} to finish",
                             lambda: (run := self.dag_run(dag_id, run_id))["state"] in ("success", "failed") and run,
                             timeout, interval=2, describe=lambda: self.describe_tasks(dag_id, run_id))

    def describe_tasks(self, dag_id: str, run_id: str) -> str:
        """One line per task instance of the run: state, try and times (for failure messages)."""
        return "--- task instances ---\n" + "\n".join(
            f"{task_id}[{index}] {ti['state']} try {ti['try_number']} start {ti.get('start_date')} "
            f"end {ti.get('end_date')}" for (task_id, index), ti in sorted(self.task_instances(dag_id, run_id).items()))

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1):
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
                f"/xcomEntries/return_value?map_index={map_index}&deserialize=true")
        return self.request("GET", path)["value"]


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
