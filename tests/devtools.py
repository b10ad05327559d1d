"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol on a pipe, for the tests
that open a page: the training report (test_report.py) and the web sampler (test_web.py).

--remote-debugging-pipe: JSON messages ended by NUL, commands into fd 3, replies and events out of fd 4,
so no extra package is needed.
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

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
BROWSER_TIMEOUT = 20.0  # seconds for the whole browser session, unless a test asks for more


class DevTools:
    """A Chromium process and its DevTools pipe; ``command`` waits for the reply, keeping the events."""

    def __init__(self, profile: Path, timeout: float = BROWSER_TIMEOUT):
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
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
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

    def open_page(self, url: str) -> str:
        """A new tab with Page, Runtime and Log events on, loaded from ``url``: its session id."""
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        session = self.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.command(f"{domain}.enable", session)
        self.command("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired")
        return session

    def evaluate(self, session: str, expression: str):
        """The JSON value of a JavaScript expression (a promise is awaited); a thrown error fails the test."""
        reply = self.command("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in reply, f"{expression[:80]}: {reply['exceptionDetails']}"
        return reply["result"].get("value")

    def errors(self) -> list[dict]:
        """Uncaught exceptions, console.error/assert calls and error log entries seen so far."""
        return [e for e in self.events
                if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise AssertionError(f"Chromium did not answer within {self.timeout} s")
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
