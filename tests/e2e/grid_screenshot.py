"""A screenshot of a run in the Airflow UI (grid view, one task instance open with its extra links), taken with
headless Chromium (Debian's ``chromium`` package) over the Chrome DevTools Protocol.

Used by ``tests/e2e/test_aggregation_in_airflow.py`` when ``MXTRANSFER_SCREENSHOT`` names the PNG to write
(``docs/images/aggregation-run.png`` is made so); the API server must let everyone in as an admin
(``AirflowCluster(all_admins=True)``), since the browser logs in through ``/auth/token/login``. The UI is a
React application: the picture is taken once the page shows the expected texts, not after a fixed delay.
A plain ``chromium --screenshot`` cannot wait for that, and Playwright would add Node.js to the test setup;
the protocol needs only a websocket client (``websockets``, installed with Airflow).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = "/usr/bin/chromium"
#: Flags for a headless Chromium on a machine without a screen or outside network.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--hide-scrollbars", "--remote-debugging-port=0")


def grid_screenshot(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int, path: Path,
                    expected: tuple[str, ...] = ("Extra Links", "Transfer Batch Job", "Transfer Destination"),
                    open_groups: tuple[str, ...] = ("transfer_provider",), grid_rows: tuple[str, ...] = ("inventory",),
                    size: tuple[int, int] = (1600, 1000), timeout: float = 120) -> None:
    """Open the details of task instance ``task_id[map_index]`` of ``run_id`` beside the grid, wait until every
    text of ``expected`` (the extra links' names) is on the page, open the grid's task groups ``open_groups``
    until the texts ``grid_rows`` show, and write a PNG of ``size`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    quote = urllib.parse.quote
    page = f"/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}/mapped/{map_index}/details"
    url = f"{base_url}/auth/token/login?next={quote(base_url + page, safe='')}"
    profile = Path(tempfile.mkdtemp(prefix="mxtransfer-chromium-"))
    browser = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _devtools_port(profile, timeout)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            target = next(item for item in json.load(answer) if item["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            devtools = _DevTools(socket)
            devtools.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1,
                          mobile=False)
            devtools.call("Page.navigate", url=url)
            devtools.wait_for_texts(expected, page, timeout)
            # the grid keeps its open task groups in the browser's local storage, under "<dag id>/open-groups"
            devtools.evaluate(f"localStorage.setItem({json.dumps(dag_id + '/open-groups')}, "
                              f"{json.dumps(json.dumps(list(open_groups)))}); location.reload()")
            devtools.wait_for_texts(expected + grid_rows, page, timeout)
            time.sleep(2)  # let the grid's last requests and transitions settle
            image = devtools.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(image))
    finally:
        browser.terminate()
        try:
            browser.wait(20)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(profile: Path, timeout: float) -> int:
    """The port Chromium chose, from the ``DevToolsActivePort`` file it writes into its profile."""
    deadline = time.monotonic() + timeout
    marker = profile / "DevToolsActivePort"
    while not marker.exists() or not marker.read_text().strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"{CHROMIUM} did not open its DevTools port")
        time.sleep(0.2)
    return int(marker.read_text().split()[0])


class _DevTools:
    """Numbered DevTools requests over one websocket; events in between are skipped."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression)["result"].get("value")

    def page_text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_texts(self, texts: tuple[str, ...], page: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(text in self.page_text() for text in texts):
            if time.monotonic() > deadline:
                raise AssertionError(f"the Airflow UI at {page} never showed {texts}:\n{self.page_text()[:3000]}")
            time.sleep(1)
