"""The console scripts' entry points: import a command, then run it, with Ctrl-C, SIGTERM and SIGHUP
handled from the first moment.

Importing a command takes seconds (torch, onnx); a Ctrl-C or SIGTERM in that time used to print an
import traceback. Here the import itself ends in one line and the documented exit code (130 or 143),
and the command's own handling (``onnxgan.cli.Command``) takes over once it runs. This module imports
nothing but the standard library, ``onnxgan.errors`` and ``onnxgan.extras``, so that it is in place
within milliseconds. A command whose module needs an extra that this install lacks (gan-train without
torch, say) ends here too, ``--help`` included: one line naming the extra, exit 2.
"""
from __future__ import annotations

import importlib
import signal
import sys

from .errors import EXIT_INTERRUPTED, EXIT_USAGE, TERMINATING, Terminated, raise_terminated
from .extras import EXTRA_MODULES


def _run(prog: str, module: str) -> None:
    """Import ``module`` (a command's module) with the signals turned into one line, then call its main."""
    previous = {s: signal.signal(s, raise_terminated) for s in TERMINATING}
    try:
        command = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(f"{prog}: error: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated as e:
        print(f"{prog}: error: {e.message}", file=sys.stderr)
        sys.exit(e.exit_code)
    except ModuleNotFoundError as e:
        missing = (e.name or "").partition(".")[0]
        if missing not in EXTRA_MODULES:  # not an extra's: a broken install or a bug, which must show
            raise
        print(f"{prog}: error: {prog} needs {missing}, which this install lacks: {EXTRA_MODULES[missing]}",
              file=sys.stderr)
        sys.exit(EXIT_USAGE)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    command(prog_name=prog)


def gan_train() -> None:
    _run("gan-train", "onnxgan.train.cli")


def gan_export() -> None:
    _run("gan-export", "onnxgan.export.cli")


def gan_sample() -> None:
    _run("gan-sample", "onnxgan.runtime.cli")


def gan_eval() -> None:
    _run("gan-eval", "onnxgan.runtime.eval_cli")


def gan_web() -> None:
    _run("gan-web", "onnxgan.runtime.web")
