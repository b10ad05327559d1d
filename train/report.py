"""Training pictures: curves.png (losses, D outputs, FID over steps) and a self-contained report.html.

``plot_curves`` is cheap enough to call at every log point; ``write_report`` runs once at the end (or
by hand on any run directory). The report embeds every picture as a base64 data URI and has no
script, so it opens from disk in any browser with no server and no network.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from onnxgan.errors import EXIT_DIVERGED, EXIT_FAILED_RUN, UserError
from onnxgan.files import atomic_write

MAX_GRIDS = 12  # sample grids shown, evenly spaced over the run (first and last included)
LAST_ROWS = 10  # training rows shown in the metrics table (every evaluation row is shown)
PANELS = (  # (title, [(metrics row key, legend label)], y scale): FID falls over decades, hence log
    ("losses", [("d_loss", "d_loss"), ("g_loss", "g_loss")], "linear"),
    ("D outputs", [("D(x)", "D(x)"), ("D(G(z))", "D(G(z))")], "linear"),
    ("FID ({features})", [("fid", "FID"), ("fid_floor", "real-vs-real floor")], "log"),
)


def plot_curves(rows: list[dict[str, Any]], path: str | Path) -> None:
    """metrics.jsonl rows -> a PNG with one panel per PANELS entry (FID only when a row has "fid")."""
    # Figure + the Agg canvas directly: no pyplot, so no global figure state and no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A panel appears when some row has one of its keys (FID only once the run evaluates).
    panels = [p for p in PANELS if any(key in row for key, _ in p[1] for row in rows)] or list(PANELS[:1])
    figure = Figure(figsize=(5 * len(panels), 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    features = "Inception features" if _scored_features(rows) != CLASSIFIER_FEATURES else "classifier features"
    for axes, (title, series, yscale) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for key, label in series:
            points = [(row["step"], row[key]) for row in rows if _is_number(row.get(key)) and "step" in row
                      and (yscale == "linear" or row[key] > 0)]
            if points:
                axes.plot(*zip(*points), label=label, marker="." if len(points) < 30 else None)
        axes.set_title(title.format(features=features))
        axes.set_yscale(yscale)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())


def write_report(run_dir: str | Path) -> Path:
    """run_dir/report.html from config.json, metrics.jsonl and samples/step_*.png; refreshes curves.png."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    rows = read_metrics(run_dir / "metrics.jsonl")
    sections = [_failure(rows), _summary(rows)] if rows else []
    grids = _spaced(sorted(p for p in (run_dir / "samples").glob("step_*.png") if p.stem[5:].isdigit()), MAX_GRIDS)
    if grids:
        figures = "".join(f'<figure><img src="{_data_uri(p)}" alt="samples at step {_step_of(p)}">'
                          f"<figcaption>step {_step_of(p)}</figcaption></figure>" for p in grids)
        sections.append(f'<h2>Samples over time</h2><div class="grids">{figures}</div>')
    if rows:
        plot_curves(rows, run_dir / "curves.png")
        sections.append(f'<h2>Curves</h2><img class="curves" src="{_data_uri(run_dir / "curves.png")}" '
                        'alt="training curves">')
        evaluations = [{k: v for k, v in row.items() if k in EVALUATION_COLUMNS} for row in rows if "fid" in row]
        if evaluations:
            features = _scored_features(rows)
            note = ("not comparable with Inception FID" if features == CLASSIFIER_FEATURES else
                    "comparable with published FID at equal sample counts")
            sections.append("<h2>Evaluations</h2>" + _table(evaluations)
                            + f"<p>FID/KID in the features of {html.escape(features)}: {note}.</p>")
        training = [row for row in rows if "d_loss" in row][-LAST_ROWS:]
        if training:
            sections.append(f"<h2>Last {len(training)} training rows</h2>" + _table(training))
    config_path = run_dir / "config.json"
    config = _config_table(json.loads(config_path.read_text())) if config_path.exists() else "<p>(no config.json)</p>"
    sections.append(f"<h2>Configuration</h2>{config}")
    title = html.escape(f"onnxgan run {run_dir.resolve().name}")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{title}</h1>{''.join(sections)}</body></html>\n")
    path = run_dir / "report.html"
    with atomic_write(path) as f:
        f.write(page.encode())
    return path


def _failure(rows: list[dict[str, Any]]) -> str:
    """The banner of a failed run: the loop's ``run_failed`` row after the last training row (a resumed run
    that trained on past it is judged anew), or nothing."""
    last_training = max((i for i, row in enumerate(rows) if "d_loss" in row), default=-1)
    failed = [row["run_failed"] for row in rows[last_training + 1:] if isinstance(row.get("run_failed"), list)]
    if not failed:
        return ""
    reasons = "".join(f"<li>{html.escape(str(reason))}</li>" for reason in failed[-1])
    return (f'<div class="failed"><h2>This run failed</h2><ul>{reasons}</ul><p>gan-train exited with status '
            f"{EXIT_FAILED_RUN} ({EXIT_DIVERGED} for NaN/Inf). The checkpoints and grids are kept: look at the grids "
            "below before you use them.</p></div>")


def _summary(rows: list[dict[str, Any]]) -> str:
    """The report's opening: the last evaluation against its floor, the class balance, the warnings the
    run printed, and how long it trained."""
    training = [row for row in rows if "d_loss" in row]
    evaluations = [row for row in rows if _is_number(row.get("fid"))]
    facts = []
    if training:
        last = training[-1]
        mean_rate = last.get("mean_steps_per_s")
        rate = f" at {mean_rate:.1f} steps/s on average" if _is_number(mean_rate) else ""
        facts.append(f"{last['step']} steps; {last.get('wall_time', 0):.0f} s of training{rate} (since the last "
                     "start, for a resumed run)")
    bars = ""
    if evaluations:
        final = evaluations[-1]
        floor = final.get("fid_floor")
        against = f" = {final['fid'] / floor:.1f}x the real-vs-real floor {floor:.2f}" if _is_number(floor) else ""
        facts.append(f"final FID {final['fid']:.2f}{against} (step {final['step']}, {final.get('n', '?')} samples)")
        facts.append("recall {:.2f}, precision {:.2f}".format(final.get("recall", math.nan),
                                                            final.get("precision", math.nan)))
        if _is_number(final.get("conditional_accuracy")):
            facts.append(f"{final['conditional_accuracy']:.1%} of images show the digit asked for")
        shares = final.get("class_histogram") or []
        if shares:
            facts.append(f"rarest class {final.get('rarest_class', '?')} at {min(shares):.1%} of samples "
                         "(MNIST: 9-11% each)")
            bars = '<div class="bars">' + "".join(
                f'<div title="class {i}: {share:.1%}"><small>{share:.0%}</small>'
                f'<span style="height:{min(share, 0.25) * 400:.0f}px"></span>{i}</div>'
                for i, share in enumerate(shares)) + "</div>"
    warnings = [f"step {row['step']}: {w}" for row in rows for w in row.get("warnings", []) if isinstance(w, str)]
    items = "".join(f"<li>{html.escape(fact)}</li>" for fact in facts)
    warned = ("<p><b>Warnings printed during the run:</b></p><ul class=\"warnings\">"
              + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>") if warnings else \
        "<p>No warnings were printed during the run.</p>"
    return f"<h2>Summary</h2><ul>{items}</ul>{bars}{warned}"


# The evaluation table's columns: what fits a laptop screen (the full rows stay in metrics.jsonl).
EVALUATION_COLUMNS = ("step", "n", "fid", "fid_floor", "kid", "precision", "recall", "class_kl", "rarest_class",
                      "rarest_class_share", "conditional_accuracy")


def _config_table(config: dict[str, Any]) -> str:
    """config.json as ``key value`` cells (nested keys dotted, lists joined) flowing in columns."""
    def flat(prefix: str, value: Any):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from flat(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            yield prefix, value

    cells = "".join(f"<div><b>{html.escape(key)}</b> {html.escape(_cell(value) if value != '' else '-')}</div>"
                    for key, value in flat("", config))
    return f'<div class="config">{cells}</div>'


CLASSIFIER_FEATURES = "onnxgan's MNIST classifier"


def _scored_features(rows: list[dict[str, Any]]) -> str:
    """The network whose features the run's scores use: the last scored row's ``features`` (Inception
    rows name it), else the MNIST classifier's."""
    named = [row["features"] for row in rows if "fid" in row and isinstance(row.get("features"), str)]
    return named[-1] if named else CLASSIFIER_FEATURES


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of metrics.jsonl; a half-written last line (a run killed mid-write), a line that is not an
    object and undecodable bytes are skipped rather than failing the report."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):  # a line that is valid JSON but not a row (a list, a number) is skipped too
            rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    """An HTML table over the scalar keys of ``rows`` in order of first appearance; lists shortened."""
    columns = list(dict.fromkeys(key for row in rows for key, value in row.items() if not isinstance(value, dict)))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _spaced(items: list[Path], count: int) -> list[Path]:
    """At most ``count`` items, evenly spaced, always keeping the first and the last."""
    if len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _step_of(path: Path) -> int:
    return int(path.stem.removeprefix("step_"))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.grids { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; text-align: center; }
img { image-rendering: pixelated; }
img.curves { max-width: 100%; image-rendering: auto; }
table { border-collapse: collapse; font-size: 0.9em; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
body { max-width: 72em; }
table { display: block; overflow-x: auto; max-width: 100%; }
.bars { display: flex; gap: 4px; align-items: flex-end; height: 110px; margin: 0.5em 0 1em; }
.bars div { display: flex; flex-direction: column; align-items: center; font-size: 0.8em; }
.bars span { width: 18px; background: #4a7; display: block; }
ul.warnings { color: #a40; }
.bars small { font-size: 0.75em; color: #555; }
.failed { border: 2px solid #c22; background: #fdecea; padding: 0.2em 1em; margin-bottom: 1em; }
.failed h2 { color: #c22; }
.config { column-width: 22em; font-size: 0.85em; }
.config div { break-inside: avoid; padding: 1px 0; }
.config b { font-weight: 600; color: #555; }
"""
