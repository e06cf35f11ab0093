"""The README documents every command, setting and exit code users rely on."""

from __future__ import annotations

from pathlib import Path

import typer.main

from qtrader.cli import GLOBAL_OPTIONS, app
from qtrader.config import OTHER_ENV, PROFILES, SEED_ENV, describe_settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_command_is_in_the_readme():
    for name in typer.main.get_group(app).commands:
        assert f"qtrader {name}" in README, name


def test_every_setting_and_env_var_is_in_the_readme():
    for env, key, _default, _help in describe_settings():
        assert f"`{env}`" in README, env
        assert f"`{key}`" in README, key
    for name in [*SEED_ENV, *PROFILES, *(n for n in OTHER_ENV if not n.endswith("_KEY"))]:
        assert name in README, name


def test_every_global_option_and_exit_code_is_in_the_readme():
    for option in GLOBAL_OPTIONS:
        assert option.flags[0] in README, option.flags[0]
    for code in range(5):
        assert f"| {code} |" in README
