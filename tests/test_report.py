"""train/report.py: curves.png and report.html on a fake run directory, and the report opened in
headless Chromium (Debian's ``chromium``, driven by tests/devtools.py), which must load it, show every
image and log no error.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from devtools import CHROMIUM, DevTools
from onnxgan.images import grid, save_png
from onnxgan.train.report import MAX_GRIDS, plot_curves, read_metrics, write_report


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


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI: apt-get install -y chromium)")
def test_report_opens_in_headless_chromium_with_its_images_and_no_console_error(tmp_path):
    report = write_report(fake_run(tmp_path / "run"))
    browser = DevTools(tmp_path / "profile")
    try:
        session = browser.open_page(report.as_uri())
        state = browser.evaluate(session, (
            "({title: document.title, ready: document.readyState, "
            "images: Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth])})"))
    finally:
        browser.close()
    assert state["ready"] == "complete" and state["title"] == "onnxgan run run"
    assert len(state["images"]) == MAX_GRIDS + 1
    assert all(complete and width > 0 for _, complete, width in state["images"]), state["images"]
    assert browser.errors() == []


def test_read_metrics_skips_what_is_not_a_row(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n[1, 2]\n7\n{"step": 2, "name": "\xff"}\n{"step": 3\n')
    rows = read_metrics(path)
    assert [row["step"] for row in rows] == [1, 2]  # the list, the number and the cut line are gone


def test_the_summary_gives_the_mean_rate_labelled_class_bars_and_the_config_as_a_table(tmp_path):
    """The report's figures a reader takes at face value: the run's mean rate (not the last interval's),
    each class bar's share written on it, and config.json as key/value cells instead of raw JSON."""
    run = fake_run(tmp_path / "run")
    rows = read_metrics(run / "metrics.jsonl")
    rows[-2].update({"steps_per_s": 40.6, "mean_steps_per_s": 7.1})  # the last training row
    rows[-1]["class_histogram"] = [0.05] + [0.95 / 9] * 9
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    page = write_report(run).read_text()
    summary = page[page.index("<h2>Summary</h2>"):page.index("Samples over time")]
    assert "7.1 steps/s on average" in summary and "40.6" not in summary
    assert "<small>5%</small>" in summary and summary.count("<small>11%</small>") == 9
    config = page[page.index("<h2>Configuration</h2>"):]
    assert "<b>model.latent_dim</b> 100" in config and "<pre>" not in config
    assert "&lt;b&gt;escaped&lt;/b&gt;" in config  # the config's text is escaped, as before
