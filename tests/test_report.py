"""train/report.py: curves.png and report.html on a fake run directory, and the report opened in
headless Chromium (Debian's ``chromium``), which must load it, show every image and log no error.

The browser is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
ended by NUL, commands into fd 3, replies and events out of fd 4), so no extra package is needed.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxgan.images import grid, save_png
from onnxgan.train.report import MAX_GRIDS, plot_curves, read_metrics, write_report

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
BROWSER_TIMEOUT = 20.0  # seconds for the whole browser session


def fake_run(root: Path, grids: int = 15, evaluations: bool = True) -> Path:
    """A run directory as gan-train writes it: config.json, metrics.jsonl (a half-written last line
    included), samples/step_*.png; eval rows carry fid like the loop's evaluations."""
    rng = np.random.default_rng(0)
    (root / "samples").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model": {"name": "mlp", "latent_dim": 100},
                                                  "train": {"seed": 0, "note": "<b>escaped</b>"}}))
    rows = []
    for step in range(100, 1600, 100):
        rows.append({"step": step, "epoch": 0, "d_loss": 1.2 + rng.normal(0, 0.1), "g_loss": 0.9 + rng.normal(0, 0.1),
                     "D(x)": 0.6, "D(G(z))": 0.4, "steps_per_s": 50.0, "wall_time": step / 50})
        if evaluations and step % 500 == 0:
            rows.append({"step": step, "fid": 100.0 / step * 100, "fid_floor": 0.5, "kid": 0.01, "recall": 0.5,
                         "class_histogram": [0.1] * 10})
    lines = [json.dumps(row) for row in rows] + ['{"step": 1600, "d_lo']
    (root / "metrics.jsonl").write_text("\n".join(lines))
    for i in range(grids):
        save_png(grid(rng.integers(0, 256, (16, 28, 28), dtype=np.uint8)), root / "samples" / f"step_{(i + 1) * 100:07d}.png")
    return root


def test_plot_curves_writes_a_png_with_a_fid_panel_only_when_there_is_fid(tmp_path):
    run = fake_run(tmp_path / "run")
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 18  # the half-written line is skipped
    plot_curves(rows, tmp_path / "with.png")
    plot_curves([row for row in rows if "fid" not in row], tmp_path / "without.png")
    plot_curves([], tmp_path / "empty.png")
    with_fid, without = Image.open(tmp_path / "with.png"), Image.open(tmp_path / "without.png")
    assert with_fid.size == (1500, 360) and without.size == (1000, 360)
    assert Image.open(tmp_path / "empty.png").size == (500, 360)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "run", "with.png", "without.png"]  # no temp files


def test_report_embeds_everything(tmp_path):
    run = fake_run(tmp_path / "run")
    page = write_report(run).read_text()
    assert (run / "curves.png").exists()
    assert page.count('src="data:image/png;base64,') == MAX_GRIDS + 1  # grids thinned to MAX_GRIDS, + curves
    assert "step 100<" in page and "step 1500<" in page  # the first and last grids are kept
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    assert "Evaluations" in page and "Inception" in page


def test_report_of_a_run_without_metrics_or_samples(tmp_path):
    (tmp_path / "bare").mkdir()
    page = write_report(tmp_path / "bare").read_text()
    assert "(no config.json)" in page and "<img" not in page


class DevTools:
    """A Chromium process and its DevTools pipe; ``command`` waits for the reply, keeping the events."""

    def __init__(self, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def map_pipes():  # in the child: fd 3 reads commands, fd 4 writes replies
            # Through fds >= 10 first: the pipe ends may themselves be 3 or 4, and dup2(fd, fd) would
            # neither move them nor clear close-on-exec.
            high_r, high_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r, from_browser_w))
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=map_pipes, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.deadline = time.monotonic() + BROWSER_TIMEOUT
        self.events: list[dict] = []
        self._buffer, self._next_id = b"", 0

    def command(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise AssertionError(f"Chromium did not answer within {BROWSER_TIMEOUT} s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError(f"Chromium closed the DevTools pipe: {self.process.stderr.read().decode()[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.command("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI: apt-get install -y chromium)")
def test_report_opens_in_headless_chromium_with_its_images_and_no_console_error(tmp_path):
    report = write_report(fake_run(tmp_path / "run"))
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.command("Target.createTarget", url="about:blank")["targetId"]
        session = browser.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.command(f"{domain}.enable", session)
        browser.command("Page.navigate", session, url=report.as_uri())
        browser.wait_for("Page.loadEventFired")
        state = browser.command("Runtime.evaluate", session, returnByValue=True, expression=(
            "({title: document.title, ready: document.readyState, "
            "images: Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth])})"))["result"]["value"]
    finally:
        browser.close()
    assert state["ready"] == "complete" and state["title"] == "onnxgan run run"
    assert len(state["images"]) == MAX_GRIDS + 1
    assert all(complete and width > 0 for _, complete, width in state["images"]), state["images"]
    errors = [e for e in browser.events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []
