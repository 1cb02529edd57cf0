"""The run options of the training commands, defined once (cli/stage_options.py): every stage lists them after
its own options, in one order, and hands them to its coach as one RunOptions."""

import typer

from sserd_cli.cli import app
from sserd_cli.cli.stage_options import RUN_OPTIONS, RunOptions

STAGES = ("train-stylegan", "train-encoder", "train", "train-features", "train-autoencoder")


def test_every_stage_ends_with_the_run_options_in_one_order():
    commands = typer.main.get_command(app).commands
    for stage in STAGES:
        names = [p.name for p in commands[stage].params]
        wanted = [n for n, _, _ in RUN_OPTIONS if stage != "train-features" or n != "amp"]  # F has no --amp
        assert names[-len(wanted):] == wanted, stage
        assert "run_options" not in names
    assert "resume" not in [p.name for p in commands["build-pairs"].params]  # not a stage with a run folder


def test_only_the_values_given_reach_the_config():
    assert RunOptions().config() == {}
    run = RunOptions(device="cpu", seed=3, resume=True, amp=False, quiet=True, time_limit=1.5)
    assert run.config() == {"device": "cpu", "seed": 3, "amp": False, "time_limit": 1.5}  # resume, quiet steer the command
