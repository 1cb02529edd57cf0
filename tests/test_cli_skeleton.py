"""The command line lists every command of the tool, and user errors are one line with exit code 2."""

import subprocess
import sys

from sserd_cli.cli import run

COMMANDS = ["edit", "prepare", "synth", "train-stylegan", "train-encoder", "build-pairs", "train", "eval",
            "import-stylegan", "info", "doctor"]


def test_help_lists_every_command(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_console_script_runs_as_a_module():
    proc = subprocess.run([sys.executable, "-c", "from sserd_cli.cli import main; main()", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert "edit" in proc.stdout


def test_user_error_is_one_line_without_traceback(capsys):
    from sserd_cli.emotions import emotion_index
    from sserd_cli.errors import SserdError

    try:
        emotion_index("furious")
    except SserdError as exc:
        assert "furious" in str(exc) and "happy" in str(exc)
    else:
        raise AssertionError("unknown emotion accepted")
