"""The web page (web/, written out by gan-web): the folder gan-web writes, the committed WebAssembly
build's size budget, and the page in headless Chromium (tests/devtools.py) sampling the committed tiny
model exactly as the Python native backend does: the same pixels for a seed, with a class, with
truncation, the same z bits and every metadata entry; conv generators, grey and RGB, conditional, the
same pixels as the Python native library's portable kernel (the one the page runs); a graph the kernel
does not run is refused in words.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import DATA, tiny_config, write_checkpoint
from devtools import CHROMIUM, DevTools
from onnxgan.images import to_uint8
from onnxgan.runtime import Sampler, _native
from onnxgan.runtime.latent import latent
from onnxgan.runtime.onnx_meta import read_header
from onnxgan.runtime.web import PAGE_FILES, WEB, main as gan_web

TINY = DATA / "native_tiny.onnx"
TINY_CONV = DATA / "tiny_dcgan.onnx"
SIZE_BUDGET = 300_000  # bytes of onnxgan.js + onnxgan.wasm (cpp/wasm/build.sh checks the same)
PAGE_TIMEOUT = 90.0  # seconds for the browser session: this machine may be shared and slow


def run_web(*args):
    return CliRunner().invoke(gan_web, [str(arg) for arg in args])


def unsupported_model(tmp_path: Path) -> Path:
    """native_tiny.onnx with its first Gemm relabelled ConvInteger: valid ONNX the kernel refuses by name."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(TINY)
    next(node for node in model.graph.node if node.op_type == "Gemm").op_type = "ConvInteger"
    path = tmp_path / "unsupported.onnx"
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


def test_gan_web_lists_two_models_of_the_same_name_apart(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "native_tiny.onnx").write_bytes(TINY.read_bytes())
    assert run_web(TINY, tmp_path / "other" / "native_tiny.onnx", "-o", tmp_path / "site").exit_code == 0
    files = [entry["file"] for entry in json.loads((tmp_path / "site" / "models.json").read_text())]
    assert files == ["native_tiny.onnx", "1-native_tiny.onnx"] and (tmp_path / "site" / files[1]).exists()


def test_gan_web_refuses_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    cases = [([TINY, "-o", tmp_path / "full"], "exists and is not an empty folder"),
             ([unsupported_model(tmp_path), "-o", tmp_path / "site"], "op 'ConvInteger'"),
             ([tmp_path / "missing.onnx", "-o", tmp_path / "site"], "no such file")]
    for args, message in cases:
        result = run_web(*args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
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
    conv = unsupported_model(tmp_path)
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
            # An unsupported model picked with the file input: refused in words, no crash.
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
    assert "op 'ConvInteger'" in refusal and "samples the generators gan-export writes" in refusal, refusal
    assert browser.errors() == []


SAMPLE_MODEL = """(async () => {
  const bytes = new Uint8Array(await (await fetch(%r)).arrayBuffer());
  const sampler = onnxganPage.runtime.open(bytes);
  const info = sampler.info;
  return {pixels: Array.from(sampler.sample(20, 77n, {truncation: 0.8})),
          shape: [info.channels, info.height, info.width], classes: info.num_classes};
})()"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI: apt-get install -y chromium)")
def test_the_page_samples_conv_and_rgb_models(tmp_path):
    """The committed grey dcgan (shown as the page's grid) and a conditional RGB dcgan-upsample (opened
    through the page's runtime), pixel for pixel against the native library's portable kernel."""
    config = dataclasses.replace(tiny_config("dcgan-upsample", num_classes=3, class_names=("a", "b", "c")), image_shape=(3, 8, 8))
    rgb = tmp_path / "rgb.onnx"
    from onnxgan.export.onnx_export import export_checkpoint  # needs torch: the train extra

    rgb.write_bytes(export_checkpoint(write_checkpoint(tmp_path / "g.pt", config, seed=1), "float32").data)
    assert run_web(TINY_CONV, rgb, "-o", tmp_path / "site").exit_code == 0
    browser = DevTools(tmp_path / "profile", timeout=PAGE_TIMEOUT)
    try:
        with serve(tmp_path / "site") as url:
            session = browser.open_page(f"{url}/index.html")
            browser.evaluate(session, WAIT_FOR_GRID)
            shown = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")  # tiny_dcgan, seed 0
            opened = browser.evaluate(session, SAMPLE_MODEL % "rgb.onnx")
    finally:
        browser.close()

    def portable(path: Path, n: int, seed: int, truncation: float | None) -> np.ndarray:
        model = _native.Model(str(path), kernel="portable")
        labels = np.arange(n, dtype=np.int64) % model.num_classes if model.num_classes else None
        return to_uint8(model.generate(latent(n, model.latent_dim, seed, truncation), labels), model.value_range)

    np.testing.assert_array_equal(np.array(shown, np.uint8), portable(TINY_CONV, 64, 0, None).ravel())
    assert opened["shape"] == [3, 8, 8] and opened["classes"] == 3
    np.testing.assert_array_equal(np.array(opened["pixels"], np.uint8), portable(rgb, 20, 77, 0.8).ravel())
    assert browser.errors() == []
