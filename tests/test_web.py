"""The web page (web/, written out by gan-web): the folder gan-web writes, the committed WebAssembly
build's size budget, and the page in headless Chromium (tests/devtools.py) sampling the committed tiny
model exactly as the Python native backend does: the same pixels for a seed, with a class, with
truncation, the same z bits and every metadata entry; a conv (unsupported) model is refused in words.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import DATA
from devtools import CHROMIUM, DevTools
from onnxgan.runtime import Sampler
from onnxgan.runtime.latent import latent
from onnxgan.runtime.onnx_meta import read_header
from onnxgan.runtime.web import PAGE_FILES, WEB, main as gan_web

TINY = DATA / "native_tiny.onnx"
SIZE_BUDGET = 300_000  # bytes of onnxgan.js + onnxgan.wasm (cpp/wasm/build.sh checks the same)
PAGE_TIMEOUT = 90.0  # seconds for the browser session: this machine may be shared and slow


def run_web(*args):
    return CliRunner().invoke(gan_web, [str(arg) for arg in args])


def conv_model(tmp_path: Path) -> Path:
    """native_tiny.onnx with its first Gemm relabelled Conv: valid ONNX the kernel refuses by name."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(TINY)
    next(node for node in model.graph.node if node.op_type == "Gemm").op_type = "Conv"
    path = tmp_path / "conv.onnx"
    onnx.save(model, path)
    return path


@contextlib.contextmanager
def serve(folder: Path):
    """A static http server for ``folder`` on a free local port (the page fetches onnxgan.wasm and
    models.json, which browsers refuse for file:// pages): yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_gan_web_writes_the_page_the_model_and_its_list(tmp_path):
    result = run_web(TINY, "-o", tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert "python3 -m http.server" in result.output
    site = tmp_path / "site"
    assert sorted(p.name for p in site.iterdir()) == sorted([*PAGE_FILES, "models.json", "native_tiny.onnx"])
    assert (site / "native_tiny.onnx").read_bytes() == TINY.read_bytes()
    for name in PAGE_FILES:
        assert (site / name).read_bytes() == (WEB / name).read_bytes(), name
    assert json.loads((site / "models.json").read_text()) == [
        {"file": "native_tiny.onnx", "title": "native_tiny.onnx (mlp-conditional, latent 6, 3 classes)"}]
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no staging folder left behind


def test_gan_web_lists_models_of_the_same_name_apart(tmp_path):
    """Each model keeps its own file and entry, whatever names the others have (two of one name, and a
    third named like the second's new name: the old "1-NAME" rule gave two of them one file)."""
    sources = [(tmp_path / "a" / "m.onnx", TINY), (tmp_path / "b" / "m.onnx", DATA / "tiny_mlp.onnx"),
               (tmp_path / "c" / "m-2.onnx", TINY), (tmp_path / "d" / "1-m.onnx", DATA / "tiny_mlp.onnx")]
    for path, source in sources:
        path.parent.mkdir()
        path.write_bytes(source.read_bytes())
    assert run_web(*(path for path, _ in sources), "-o", tmp_path / "site").exit_code == 0
    entries = json.loads((tmp_path / "site" / "models.json").read_text())
    assert [entry["file"] for entry in entries] == ["m.onnx", "m-2.onnx", "m-2-2.onnx", "1-m.onnx"]
    for entry, (_, source) in zip(entries, sources):
        assert (tmp_path / "site" / entry["file"]).read_bytes() == source.read_bytes(), entry


def test_gan_web_refuses_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    cases = [([TINY, "-o", tmp_path / "full"], "exists and is not an empty folder"),
             ([conv_model(tmp_path), "-o", tmp_path / "site"], "op 'Conv'"),
             # gan-web has no --backend: its hint names the command that runs such a model
             ([conv_model(tmp_path), "-o", tmp_path / "site"], "samples MLP generators only"),
             ([tmp_path / "missing.onnx", "-o", tmp_path / "site"], "no such file")]
    for args, message in cases:
        result = run_web(*args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "--backend" not in result.output, result.output
    assert not (tmp_path / "site").exists()


def test_the_committed_webassembly_build_fits_its_budget():
    size = (WEB / "onnxgan.js").stat().st_size + (WEB / "onnxgan.wasm").stat().st_size
    assert size < SIZE_BUDGET, f"onnxgan.js + onnxgan.wasm = {size} bytes"


WAIT_FOR_GRID = """new Promise((resolve, reject) => {
  const start = Date.now();
  (function poll() {
    if (window.onnxganPage && onnxganPage.state === "sampled") resolve(true);
    else if (window.onnxganPage && onnxganPage.error) reject(new Error(onnxganPage.error));
    else if (Date.now() - start > 60000) reject(new Error("no grid after 60 s"));
    else setTimeout(poll, 50);
  })();
})"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI: apt-get install -y chromium)")
def test_the_page_samples_the_same_pixels_as_the_native_backend(tmp_path):
    assert run_web(TINY, "-o", tmp_path / "site").exit_code == 0
    conv = conv_model(tmp_path)
    python = Sampler(TINY, backend="native")
    browser = DevTools(tmp_path / "profile", timeout=PAGE_TIMEOUT)
    try:
        with serve(tmp_path / "site") as url:
            session = browser.open_page(f"{url}/index.html")
            browser.evaluate(session, WAIT_FOR_GRID)
            shown = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")  # the grid: seed 0, classes cycled
            truncated = browser.evaluate(session, "Array.from(onnxganPage.sampler.sample(64, 12345n, {truncation: 0.5}))")
            labelled = browser.evaluate(session, "Array.from(onnxganPage.sampler.sample(64, 2n ** 64n - 1n, "
                                                 "{labels: new Array(64).fill(2)}))")
            z = browser.evaluate(session, "Array.from(onnxganPage.sampler.latent(5, 7n, 0.3))")
            metadata = browser.evaluate(session, "onnxganPage.sampler.metadata")
            page = browser.evaluate(session, "({rows: document.querySelectorAll('#metadata tr').length, "
                                             "classes: document.getElementById('class').options.length, "
                                             "strip: document.getElementById('strip').width, "
                                             "status: document.getElementById('status').textContent})")
            # A conv model picked with the file input: refused in words, no crash.
            document = browser.command("DOM.getDocument", session)["root"]["nodeId"]
            node = browser.command("DOM.querySelector", session, nodeId=document, selector="#file")["nodeId"]
            browser.command("DOM.setFileInputFiles", session, nodeId=node, files=[str(conv)])
            refusal = browser.evaluate(session, """new Promise(resolve => {
              (function poll() { onnxganPage.error ? resolve(onnxganPage.error) : setTimeout(poll, 50); })();
            })""")
    finally:
        browser.close()
    np.testing.assert_array_equal(np.array(shown, np.uint8), python.sample(64, 0).ravel())
    np.testing.assert_array_equal(np.array(truncated, np.uint8), python.sample(64, 12345, truncation=0.5).ravel())
    np.testing.assert_array_equal(np.array(labelled, np.uint8), python.sample(64, 2**64 - 1, labels=2).ravel())
    np.testing.assert_array_equal(np.array(z, np.float64).astype(np.float32), latent(5, 6, 7, truncation=0.3).ravel())
    assert metadata == read_header(TINY.read_bytes()).metadata
    assert page["rows"] == len(metadata) + 1 and page["classes"] == 4 and page["strip"] > 0
    assert page["status"].startswith("native_tiny.onnx: 64 images from seed 0"), page["status"]
    assert "op 'Conv'" in refusal and "samples MLP generators only" in refusal, refusal
    assert browser.errors() == []
