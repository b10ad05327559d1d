"""``gan-web``: model.onnx files -> a static folder that samples them in the browser.

The folder holds the page (web/ of the source tree, onnxgan/web in a wheel: index.html, app.js,
onnxgan-api.js and the native sampler compiled to WebAssembly, onnxgan.js + onnxgan.wasm, built from
cpp/wasm), a copy of each model (``--pretrained mnist``: the one shipped in runtime/pretrained) and
models.json listing them, which the page offers and opens the first of. Any static host serves it;
nothing runs on a server.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from onnxgan.cli import CONTEXT_SETTINGS, Command
from onnxgan.errors import UserError
from onnxgan.files import new_folder

from . import pretrained
from .backends import NativeRefused
from .sampler import Sampler

WEB = Path(__file__).resolve().parent.parent / "web"
PAGE_FILES = ("index.html", "app.js", "onnxgan-api.js", "onnxgan.js", "onnxgan.wasm")


@click.command("gan-web", cls=Command, context_settings=CONTEXT_SETTINGS)
@click.argument("models", nargs=-1, metavar="[MODEL.onnx...]")
@click.option("--pretrained", "pretrained_names", type=click.Choice(pretrained.NAMES), multiple=True,
              help="Also offer a generator shipped with onnxgan (mnist: a conditional MLP); repeatable.")
@click.option("-o", "--output", required=True, metavar="SITE/", help="A new or empty folder to write the page into.")
def main(models: tuple[str, ...], pretrained_names: tuple[str, ...], output: str) -> None:
    """Write a web page that samples generators (MLP and conv, grey or RGB) in the browser with onnxgan's C++ kernel
    (WebAssembly): an 8x8 grid from a seed, classes, truncation and a latent walk.

    \b
    Examples:
      gan-web model.onnx -o site/
      gan-web --pretrained mnist -o site/
      python3 -m http.server -d site        # then open http://localhost:8000
    """
    if not models and not pretrained_names:
        raise UserError("give the models to offer: gan-web MODEL.onnx... and/or --pretrained NAME")
    paths = [Path(model) for model in models] + [pretrained.path(name) for name in pretrained_names]
    click.echo(write_site(paths, Path(output)))


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or NAME-2.onnx, NAME-3.onnx, ... (the first not in ``taken``): two models of one file name
    from two folders each keep their own file and entry."""
    path, k = Path(name), 1
    while name in taken:
        k += 1
        name = f"{path.stem}-{k}{path.suffix}"
    return name


def write_site(models: list[Path], folder: Path) -> str:
    """The page and ``models`` in a new or empty ``folder``, all or nothing; returns a one-line summary."""
    missing = [name for name in PAGE_FILES if not (WEB / name).is_file()]
    if missing:
        raise UserError(f"this onnxgan install lacks the web page ({', '.join(missing)} in {WEB}); reinstall onnxgan")
    entries, names = [], set()
    for model in models:
        try:
            info = Sampler(model, backend="native").info()  # the checks the page's kernel makes, as a UserError
        except NativeRefused as e:
            raise UserError(f"{model}: the page's WebAssembly kernel cannot run it ({e.reason}); "
                            "sample this model with gan-sample, which runs it on onnxruntime") from None
        name = unique_name(model.name, names)
        names.add(name)
        classes = f", {info['num_classes']} classes" if info["num_classes"] else ""
        entries.append({"file": name, "source": model,
                        "title": f"{model.name} ({info['model']}, latent {info['latent_dim']}{classes})"})
    with new_folder(folder) as staging:
        for name in PAGE_FILES:
            shutil.copyfile(WEB / name, staging / name)
        for entry in entries:
            shutil.copyfile(entry.pop("source"), staging / entry["file"])
        (staging / "models.json").write_text(json.dumps(entries, indent=1) + "\n")
    return f"{folder}: a web page sampling {', '.join(entry['file'] for entry in entries)}; serve it, e.g. " \
           f"python3 -m http.server -d {folder}"
