"""Facts in prose, checked against the code that decides them: the settings a resume may change
(CHANGEABLE_ON_RESUME) as README and train/cli.py's docstring list them, the models ``--model``'s help
names (the registry, train/models.py's ARCHITECTURES), README's gan-train option table against
``gan-train --help`` (every option, and every default the table states as a value), README's Map (its
files exist, each command sits where launch.py starts it), and the losses that train/config.py and
train/trainer.py list (LOSSES). Each checker is also fed a planted violation, so that it is seen to fail.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from onnxgan.train import cli as train_cli
from onnxgan.train import trainer
from onnxgan.train.config import LOSSES
from onnxgan.train.models import ARCHITECTURES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FLAG = re.compile(r"--[a-z0-9*][a-z0-9*-]*")


def train_flags() -> set[str]:
    """Every option of ``gan-train --help`` (an on/off pair as both names), --help aside."""
    return {flag for param in train_cli.main.params for flag in (*param.opts, *param.secondary_opts)}


def flags_named(prose: str) -> set[str]:
    """The gan-train options a sentence names; ``--*-every`` stands for every option so named."""
    named = set()
    for flag in FLAG.findall(prose):
        pattern = re.compile(re.escape(flag).replace(r"\*", "[a-z0-9-]+") + "$")
        named |= {option for option in train_flags() if pattern.match(option)} if "*" in flag else {flag}
    return named


def paragraph(text: str, opening: str) -> str:
    """The paragraph of ``text`` that begins with ``opening`` (up to the next blank line)."""
    start = text.index(opening)
    end = text.find("\n\n", start)
    return text[start:] if end < 0 else text[start:end]


def resume_prose_errors(prose: str) -> list[str]:
    """What the prose about resuming gets wrong against CHANGEABLE_ON_RESUME."""
    allowed = {"--" + name.replace("_", "-") for name in train_cli.CHANGEABLE_ON_RESUME}
    named = flags_named(prose) - {"--resume"}
    return ([f"may change but not named: {' '.join(sorted(allowed - named))}"] if allowed - named else []) + \
           ([f"named but may not change: {' '.join(sorted(named - allowed))}"] if named - allowed else [])


def test_readme_lists_the_settings_a_resume_may_change():
    prose = paragraph(README, "Resuming takes every setting from the checkpoint")
    assert resume_prose_errors(prose) == []


def test_train_cli_docstring_lists_the_settings_a_resume_may_change():
    assert resume_prose_errors(paragraph(train_cli.__doc__, "Resuming takes every setting")) == []


def test_the_resume_check_sees_a_setting_left_out():
    prose = paragraph(README, "Resuming takes every setting from the checkpoint").replace("`--device`", "the device")
    assert resume_prose_errors(prose) == ["may change but not named: --device"]
    assert resume_prose_errors(prose + " and `--lr`") == ["may change but not named: --device",
                                                          "named but may not change: --lr"]


def names_missing(names, text: str) -> list[str]:
    """The ``names`` that ``text`` does not mention (``dcgan`` inside ``dcgan-fc`` is not a mention of
    ``dcgan``)."""
    return [name for name in names if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)]


def models_missing(help_text: str) -> list[str]:
    """The models of the registry that a help text does not name."""
    return names_missing(ARCHITECTURES, help_text)


def model_help() -> str:
    return next(param.help for param in train_cli.main.params if "--model" in param.opts)


def test_the_model_names_are_the_registry():
    assert tuple(ARCHITECTURES) == train_cli.MODEL_NAMES


def test_model_help_names_every_model():
    assert models_missing(model_help()) == []


def test_the_model_help_check_sees_a_model_left_out():
    every = "mlp, mlp-bn, dcgan, dcgan-upsample and dcgan-fc"
    assert models_missing(every) == []
    assert models_missing(every.replace("dcgan, ", "")) == ["dcgan"]  # dcgan-fc does not count for dcgan


def option_table(text: str) -> list[tuple[str, str]]:
    """README's gan-train option table: (options cell, default cell) per row."""
    table = text[text.index("| option | default | meaning |"):]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((cells[0], cells[1]))
    return rows


def stated(text: str, default: object) -> bool:
    """Whether the table's text for one option states ``default``: a number equal to it, ``off`` for
    False, or the value itself."""
    if isinstance(default, bool):
        return text == ("on" if default else "off")
    if isinstance(default, (int, float)):
        try:
            return float(text) == default
        except ValueError:
            return False
    return text == str(default)


def option_table_errors(text: str) -> list[str]:
    """What README's option table gets wrong against gan-train's options: an option missing from it or
    unknown to gan-train, and a default stated as a value that is not the option's. A row of alternatives
    (``--steps`` / ``--epochs``) and an option whose default is decided later (empty, None) are described
    in words and not compared."""
    defaults = {flag: param.default for param in train_cli.main.params for flag in param.opts}
    errors, listed = [], set()
    for options_cell, default_cell in option_table(text):
        flags = FLAG.findall(options_cell)
        listed.update(flags)
        values = [value.strip("` ") for value in default_cell.split(", ")]
        if "/" in options_cell or len(values) not in (1, len(flags)):
            continue
        for flag, value in zip(flags, values * len(flags) if len(values) == 1 else values):
            default = defaults.get(flag)
            decided_later = not isinstance(default, (bool, int, float, str)) or default == ""
            if not decided_later and not stated(value, default):
                errors.append(f"{flag}: the table says {value}, gan-train's default is {default!r}")
    errors += [f"{flag}: missing from the table" for flag in sorted(train_flags() - listed - {"--help"})]
    errors += [f"{flag}: not an option of gan-train" for flag in sorted(listed - train_flags())]
    return errors


def test_readme_option_table_matches_gan_train_help():
    assert option_table_errors(README) == []


def test_gan_train_help_shows_the_options_the_table_checks():
    result = CliRunner().invoke(train_cli.main, ["--help"])
    assert result.exit_code == 0 and set(FLAG.findall(result.output)) >= train_flags()


@pytest.mark.parametrize("change, error", [
    ("| 128, 5e-4, 1e-3,", "--batch-size: the table says 64, gan-train's default is 128"),
    ("| `--seed` | 0 |", "--seed: missing from the table"),
    ("`--sync-bn` |", "--sync-batchnorm: not an option of gan-train"),
])
def test_the_option_table_check_sees_a_planted_error(change, error):
    planted = {"| 128, 5e-4, 1e-3,": "| 64, 5e-4, 1e-3,", "| `--seed` | 0 |": "| seed | 0 |",
               "`--sync-bn` |": "`--sync-batchnorm` |"}[change]
    assert change in README
    assert error in option_table_errors(README.replace(change, planted))


def map_errors(text: str) -> list[str]:
    """What README's Map gets wrong: a file it names that does not exist, or a command not placed in the
    module that src/onnxgan/launch.py starts it from."""
    table = text[text.index("## Map"):text.index("```", text.index("## Map"))]
    errors = [f"{path}: no such file" for path in re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.\w+)`", table)
              if not (ROOT / path).exists()]
    launched = re.findall(r'_run\("(gan-[a-z]+)", "onnxgan\.(\w+)\.(\w+)"\)', (ROOT / "src/onnxgan/launch.py").read_text())
    row = next(line for line in table.splitlines() if line.startswith("| which command lives where?"))
    placed = dict(re.findall(r"`(gan-[a-z]+)`: `([\w/.]+)`", row))
    errors += [f"{command}: the Map says {placed.get(command)}, launch.py starts {room}/{module}.py"
               for command, room, module in launched if placed.get(command) != f"{room}/{module}.py"]
    return errors


def test_readme_map_names_real_files_and_each_command_in_its_module():
    assert map_errors(README) == []


def test_the_map_check_sees_a_planted_error():
    assert map_errors(README.replace("`gan-eval`: `runtime/eval_cli.py`", "`gan-eval`: `quality/eval_cli.py`")) == [
        "quality/eval_cli.py: no such file",
        "gan-eval: the Map says quality/eval_cli.py, launch.py starts runtime/eval_cli.py"]


def loss_comment() -> str:
    """The comment beside TrainConfig's ``loss`` field in train/config.py."""
    source = (ROOT / "train" / "config.py").read_text()
    return re.search(r"^    loss: str = .*?#(.*)$", source, flags=re.M).group(1)


@pytest.mark.parametrize("where", ["config.py's loss field", "trainer.py's docstring"])
def test_the_losses_listed_in_prose_are_every_loss(where):
    text = loss_comment() if where.startswith("config") else trainer.__doc__
    assert names_missing(LOSSES, text) == []


def test_the_loss_check_sees_a_loss_left_out():
    assert names_missing(LOSSES, "ns, hinge, wgan-gp or rpgan") == []
    assert names_missing(LOSSES, "ns (non-saturating), hinge, wgan-gp") == ["rpgan"]
