"""The docs: the README stays short and accurate, every command, setting, exit code and error
message users meet is documented, the generated reference equals what the code generates,
and the site builds strictly (no broken link, no page outside the nav, no network)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import typer.main

from qtrader import docs_gen
from qtrader.cli import GLOBAL_OPTIONS, app
from qtrader.config import OTHER_ENV, PROFILES, SEED_ENV, describe_settings
from qtrader.errors import EXIT_CODES

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
ALL_DOCS = "\n".join(p.read_text() for p in sorted(DOCS.rglob("*.md")))
HAND_WRITTEN = "\n".join(
    p.read_text() for p in sorted(DOCS.rglob("*.md")) if docs_gen.BANNER not in p.read_text()
)
REFERENCE = DOCS / "reference"


def test_generated_reference_equals_what_the_code_generates():
    stale = [str(p) for p in docs_gen.differing(ROOT)]
    assert not stale, f"{stale} differ from the code: run `make docs-ref` and commit them"


def test_the_reference_check_fails_on_a_stale_page(tmp_path):
    for path, text in docs_gen.pages().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert docs_gen.differing(tmp_path) == []
    settings = tmp_path / docs_gen.REFERENCE / "settings.md"
    settings.write_text(settings.read_text().replace("QTRADER_RISK_MAX_LEVERAGE", "QTRADER_X"))
    assert docs_gen.differing(tmp_path) == [docs_gen.REFERENCE / "settings.md"]


def test_every_table_and_view_is_described():
    assert docs_gen.UNDESCRIBED not in (REFERENCE / "database.md").read_text()


def test_every_command_is_in_the_hand_written_overview():
    overview = (REFERENCE / "index.md").read_text()
    commands = (REFERENCE / "commands.md").read_text()
    for name in typer.main.get_group(app).commands:
        assert f"`qtrader {name}" in overview, name
        assert f"## `qtrader {name}`" in commands, name


def test_every_setting_and_env_var_is_documented():
    settings = (REFERENCE / "settings.md").read_text()
    for env, key, _default, help_text in describe_settings():
        section, name = key.strip("[").split("] ")
        assert f"`{env}`" in settings, env
        assert f"## `[{section}]`" in settings and f"| `{name}` |" in settings, key
        assert help_text.strip(), f"{key} has no meaning: give setting() its help text"
    for name in [*SEED_ENV, *PROFILES, *OTHER_ENV]:
        assert name in settings, name


def test_every_global_option_is_documented():
    commands = (REFERENCE / "commands.md").read_text()
    for option in GLOBAL_OPTIONS:
        assert f"| `{option.flags[0]}` |" in commands, option.flags[0]


def test_readme_exit_code_table_is_every_exit_code():
    rows = re.findall(r"^\| (\d+) \| ", README, flags=re.MULTILINE)
    assert [int(code) for code in rows] == list(EXIT_CODES)


def test_readme_is_short_and_names_the_two_commands():
    assert len(README.encode()) < 7_000, "the README is an entry point: move details to docs/"
    assert "make demo" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "docs/img/report.png" in README and (DOCS / "img" / "report.png").stat().st_size > 20_000


def test_readme_links_point_at_files_that_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_docs_do_not_send_readers_outside_the_repository():
    assert "../shared" not in ALL_DOCS + README and "seed 003" not in ALL_DOCS + README


ERRORS = {"UsageError", "ConfigError", "SourceUnavailable", "StrictInputError", "Halted",
          "DatabaseBusy", "ExchangeUnavailable", "ExchangeBanned", "ExchangeAuthFailed",
          "QtraderError", "BadParameter", "ClockSkew", "NotSentError"}  # fmt: skip


def error_message_stems() -> list[tuple[str, int, str]]:
    """For every error qtrader raises with a message: its longest literal piece."""
    stems = []
    for path in sorted((ROOT / "qtrader").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in ERRORS:
                continue
            pieces = [
                sub.value
                for sub in ast.walk(node.args[0])
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
            ]
            pieces = [p.strip(" ;:,.()'\"") for p in pieces]
            pieces = [p for p in pieces if len(p) >= 8]
            if pieces:
                stems.append((str(path.relative_to(ROOT)), node.lineno, max(pieces, key=len)))
    return stems


def test_every_error_message_is_in_troubleshooting():
    page = (DOCS / "troubleshooting.md").read_text().replace("\\|", "|")
    stems = error_message_stems()
    assert len(stems) > 50
    missing = [(path, line, stem) for path, line, stem in stems if stem not in page]
    assert not missing, (
        f"add these messages, their cause and fix, to docs/troubleshooting.md: {missing}"
    )


def test_docs_build_strictly_without_network(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    index = (tmp_path / "site" / "index.html").read_text()
    assert "fonts.googleapis.com" not in index  # theme.font: false
    assert (tmp_path / "site" / "reference" / "settings" / "index.html").is_file()
