"""What every onnxgan command shares: user mistakes end in one line on stderr and a documented code.

``Command`` is a click command class whose ``main`` turns click's usage errors, ``CommandError``s
(``UserError`` -> 2, ``CheckFailed`` -> 1, ...), the OS's refusal of a path the user gave (exit 2),
Ctrl-C, SIGTERM and SIGHUP into ``prog: error: message`` and
``sys.exit(code)``, never a traceback. Real bugs still raise, so they are not mistaken for user errors.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, NoReturn

import click

from .errors import EXIT_INTERRUPTED, EXIT_USAGE, TERMINATING, CommandError, Terminated, printable, raise_terminated

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(prog: str, message: str, code: int) -> NoReturn:
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)


class Command(click.Command):
    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> NoReturn:
        prog = prog_name or self.name or "onnxgan"
        extra.pop("standalone_mode", None)
        main_thread = threading.current_thread() is threading.main_thread()
        # only the main thread may set handlers; None: a handler set outside Python, which cannot be restored
        previous = {s: signal.signal(s, raise_terminated) for s in TERMINATING} if main_thread else {}
        try:
            result = super().main(args, prog_name=prog, standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            fail(prog, e.format_message().replace("\n", " "), EXIT_USAGE)
        except CommandError as e:
            fail(prog, str(e), e.exit_code)
        except OSError as e:
            if e.filename is None:  # not about a path the user gave: a bug or the machine, which must show
                raise
            # the OS refused a path the user gave (a name component over 255 bytes, a path over 4096, ...)
            fail(prog, f"{printable(os.fsdecode(e.filename))}: {e.strerror or e}", EXIT_USAGE)
        except Terminated as e:
            fail(prog, e.message, e.exit_code)
        except (click.Abort, KeyboardInterrupt):
            fail(prog, "interrupted", EXIT_INTERRUPTED)
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
        sys.exit(result if isinstance(result, int) else 0)


def int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    """Parse ``256,512,1024`` into (256, 512, 1024); empty -> ()."""
    if not value:
        return ()
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 256,512,1024, got {value!r}") from None
