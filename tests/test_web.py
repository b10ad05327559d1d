"""The web page (web/, written out by gan-web): the folder gan-web writes, the committed WebAssembly
build's size budget, and the page in headless Chromium (tests/devtools.py) sampling the committed tiny
model exactly as the Python native backend does: the same pixels for a seed, with a class, with
truncation, the same z bits and every metadata entry; conv generators, grey and RGB, conditional, the
same pixels as the Python native library's portable kernel (the one the page runs); a graph the kernel
does not run is refused in words.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import http.server
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kit import DATA, NATIVE_TINY, tiny_config, write_checkpoint
from devtools import CHROMIUM, DevTools
from onnxgan.images import to_uint8
from onnxgan.runtime import Sampler, _native
from onnxgan.runtime.latent import latent
from onnxgan.runtime.onnx_meta import read_header
from onnxgan.runtime.web import PAGE_FILES, WEB, main as gan_web

TINY_CONV = DATA / "tiny_dcgan.onnx"
SIZE_BUDGET = 300_000  # bytes of onnxgan.js + onnxgan.wasm (cpp/wasm/build.sh checks the same)
PAGE_TIMEOUT = 90.0  # seconds for the browser session: this machine may be shared and slow


def run_web(*args):
    return CliRunner().invoke(gan_web, [str(arg) for arg in args])


def unsupported_model(tmp_path: Path) -> Path:
    """native_tiny.onnx with its first Gemm relabelled ConvInteger: valid ONNX the kernel refuses by name."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(NATIVE_TINY)
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
    result = run_web(NATIVE_TINY, "-o", tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert "python3 -m http.server" in result.output
    site = tmp_path / "site"
    assert sorted(p.name for p in site.iterdir()) == sorted([*PAGE_FILES, "models.json", "native_tiny.onnx"])
    assert (site / "native_tiny.onnx").read_bytes() == NATIVE_TINY.read_bytes()
    for name in PAGE_FILES:
        assert (site / name).read_bytes() == (WEB / name).read_bytes(), name
    assert json.loads((site / "models.json").read_text()) == [
        {"file": "native_tiny.onnx", "title": "native_tiny.onnx (mlp-conditional, latent 6, 3 classes)"}]
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no staging folder left behind


def test_gan_web_lists_models_of_the_same_name_apart(tmp_path):
    """Each model keeps its own file and entry, whatever names the others have: the old rule named the
    second m.onnx "2-m.onnx" here, the first model's name, and copied it over that model's file."""
    sources = [(tmp_path / "a" / "2-m.onnx", NATIVE_TINY), (tmp_path / "b" / "m.onnx", DATA / "tiny_mlp.onnx"),
               (tmp_path / "c" / "m.onnx", NATIVE_TINY), (tmp_path / "d" / "m-2.onnx", DATA / "tiny_mlp.onnx")]
    for path, source in sources:
        path.parent.mkdir()
        path.write_bytes(source.read_bytes())
    assert run_web(*(path for path, _ in sources), "-o", tmp_path / "site").exit_code == 0
    entries = json.loads((tmp_path / "site" / "models.json").read_text())
    assert [entry["file"] for entry in entries] == ["2-m.onnx", "m.onnx", "m-2.onnx", "m-2-2.onnx"]
    for entry, (_, source) in zip(entries, sources):
        assert (tmp_path / "site" / entry["file"]).read_bytes() == source.read_bytes(), entry


def test_gan_web_refuses_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    cases = [([NATIVE_TINY, "-o", tmp_path / "full"], "exists and is not an empty folder"),
             ([unsupported_model(tmp_path), "-o", tmp_path / "site"], "op 'ConvInteger'"),
             # gan-web has no --backend: its hint names the command that runs such a model
             ([unsupported_model(tmp_path), "-o", tmp_path / "site"], "sample this model with gan-sample"),
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
    assert run_web(NATIVE_TINY, "-o", tmp_path / "site").exit_code == 0
    conv = unsupported_model(tmp_path)
    python = Sampler(NATIVE_TINY, backend="native")
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
    assert metadata == read_header(NATIVE_TINY.read_bytes()).metadata
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


SCREENSHOTS = "ONNXGAN_PAGE_SCREENSHOTS"  # a folder: the layout test also saves its screenshots there (docs/)
WIDTHS = [(390, 844, 3, True), (1280, 900, 1, False)]  # a phone (CSS px, device pixel ratio 3) and a desktop


def _input(selector: str, value: str, event: str) -> str:
    return (f"(() => {{ const e = document.querySelector({selector!r}); e.value = {value!r}; "
            f"e.dispatchEvent(new Event({event!r})); return true; }})()")


ENTER = ("document.getElementById('seed').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
WAIT_FOR_ERROR = """new Promise(resolve => {
  (function poll() { onnxganPage.error ? resolve(onnxganPage.error) : setTimeout(poll, 50); })();
})"""
WAIT_FOR_DOWNLOAD = """new Promise(resolve => {
  (function poll() { onnxganPage.lastDownload ? resolve(onnxganPage.lastDownload) : setTimeout(poll, 50); })();
})"""
LAYOUT = """(() => {
  const grid = document.getElementById('grid'), column = grid.parentElement;
  return {overflow: document.documentElement.scrollWidth - window.innerWidth,
          gridCss: grid.getBoundingClientRect().width, column: column.clientWidth, gridPixels: grid.width,
          ratio: window.devicePixelRatio, hash: location.hash, seed: document.getElementById('seed').value,
          controlsHidden: document.getElementById('controls').hidden, source: onnxganPage.source,
          summary: document.getElementById('summary').innerText, walkRows: onnxganPage.walkRows.length,
          folded: !document.getElementById('metadata-details').open};
})()"""


def _close_enough(a: list, b: np.ndarray) -> bool:
    """The walk's z comes from JavaScript's float64 slerp: a pixel may round one level apart."""
    diff = np.abs(np.array(a, np.int16) - b.astype(np.int16).ravel())
    return diff.max() <= 1 and (diff == 0).mean() > 0.99


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI: apt-get install -y chromium)")
@pytest.mark.parametrize("width, height, ratio, mobile", WIDTHS, ids=["390px", "1280px"])
def test_the_page_works_at_phone_and_desktop_width(tmp_path, width, height, ratio, mobile):
    """At 390 px and 1280 px: no horizontal overflow; the grid drawn at a whole multiple of its pixels and
    filling most of its column; Enter samples, a random seed, live truncation, a class-keeping walk (one
    row per class for "each class in turn"), download, a link that reproduces the view; a bad file is
    one sentence and the model on screen stays."""
    assert run_web("--pretrained", "mnist", NATIVE_TINY, "-o", tmp_path / "site").exit_code == 0
    (tmp_path / "notes.onnx").write_text("my shopping list, not a model\n")
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "site" / "mnist.onnx").read_bytes()[:100_000])
    mnist = Sampler((tmp_path / "site" / "mnist.onnx"), backend="native")
    browser = DevTools(tmp_path / "profile", timeout=PAGE_TIMEOUT)
    try:
        with serve(tmp_path / "site") as url:
            session = browser.open_page(f"{url}/index.html#model=mnist.onnx")  # the second model listed
            browser.command("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                            deviceScaleFactor=ratio, mobile=mobile)
            browser.command("Page.reload", session)
            browser.wait_for("Page.loadEventFired")
            browser.evaluate(session, WAIT_FOR_GRID)
            browser.evaluate(session, _input("#seed", "7", "input") + " && " + ENTER)
            entered = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")
            browser.evaluate(session, "document.getElementById('truncate').click()")
            browser.evaluate(session, _input("#truncation", "0.5", "input"))  # no release: live
            truncated = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")
            browser.evaluate(session, _input("#class", "3", "change"))
            walk_of_3 = browser.evaluate(session, "Array.from(onnxganPage.walkRows[0])")
            layout = browser.evaluate(session, LAYOUT)
            shot = browser.command("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
            linked_grid = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")
            browser.evaluate(session, _input("#class", "-1", "change"))
            rows = browser.evaluate(session, "onnxganPage.walkRows.map(row => Array.from(row))")
            browser.evaluate(session, "document.getElementById('random-seed').click()")
            random_seed = browser.evaluate(session, "document.getElementById('seed').value")
            browser.evaluate(session, "document.getElementById('download').click()")
            downloaded = browser.evaluate(session, WAIT_FOR_DOWNLOAD)
            # a bad file picked with the file input: one sentence, the model on screen stays
            before = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")
            document = browser.command("DOM.getDocument", session)["root"]["nodeId"]
            node = browser.command("DOM.querySelector", session, nodeId=document, selector="#file")["nodeId"]
            refusals = []
            for bad in ("notes.onnx", "cut.onnx"):
                browser.evaluate(session, "onnxganPage.error = null")
                browser.command("DOM.setFileInputFiles", session, nodeId=node, files=[str(tmp_path / bad)])
                refusals.append(browser.evaluate(session, WAIT_FOR_ERROR))
            after = browser.evaluate(session, LAYOUT)
            still = browser.evaluate(session, "Array.from(onnxganPage.lastPixels)")
            # the link, opened afresh, shows the same view
            linked = browser.open_page(f"{url}/index.html{layout['hash']}")
            browser.evaluate(linked, WAIT_FOR_GRID)
            reproduced = browser.evaluate(linked, "Array.from(onnxganPage.lastPixels)")
    finally:
        browser.close()
    picture = base64.b64decode(shot["data"])
    (tmp_path / f"web-{width}.png").write_bytes(picture)
    if os.environ.get(SCREENSHOTS):  # 256 colours: a tenth of the bytes, no visible change for this page
        Image.open(io.BytesIO(picture)).convert("RGB").quantize(256).save(
            Path(os.environ[SCREENSHOTS]) / f"web-{width}px.png", optimize=True)
    np.testing.assert_array_equal(np.array(entered, np.uint8), mnist.sample(64, 7).ravel())
    np.testing.assert_array_equal(np.array(truncated, np.uint8), mnist.sample(64, 7, truncation=0.5).ravel())
    assert _close_enough(walk_of_3, mnist.interpolate(1, 2, 16, label=3, truncation=0.5))
    assert len(rows) == 10 and all(_close_enough(rows[k], mnist.interpolate(1, 2, 16, label=k, truncation=0.5))
                                   for k in (0, 9))
    assert layout["overflow"] <= 0 and after["overflow"] <= 0, (layout, after)
    native = 8 * (28 + 2) + 2  # the grid's own pixels across
    assert layout["gridPixels"] % native == 0 and layout["gridCss"] >= 0.75 * min(layout["column"], 640), layout
    assert layout["hash"] == "#model=mnist.onnx&seed=7&class=3&truncation=0.5", layout["hash"]
    np.testing.assert_array_equal(np.array(reproduced, np.uint8), np.array(linked_grid, np.uint8))
    assert random_seed != "7" and downloaded["name"] == f"mnist-seed{random_seed}.png" and downloaded["bytes"] > 0
    assert "conditional on 10 classes" in layout["summary"] and "FID 4.958" in layout["summary"] and layout["folded"]
    assert refusals == ["notes.onnx: not an ONNX model. Still showing mnist.onnx.",
                        "cut.onnx: the file is cut short; copy or export it again. Still showing mnist.onnx."]
    assert not after["controlsHidden"] and after["source"] == "mnist.onnx" and still == before
    assert browser.errors() == []
