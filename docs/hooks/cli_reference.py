"""MkDocs hook: reference/cli.md is every command's `--help`, made at build time."""

from __future__ import annotations

from typing import Any

# The page is generated, never committed, so it cannot drift from the Typer app: a command or an
# option added, renamed or reworded shows up in the next build. Rendered in-process through
# typer's CliRunner at a fixed width and without colour, i.e. what a user's 100-column terminal
# shows.
PAGE = "reference/cli.md"
WIDTH = 100


def help_text(*args: str) -> str:
    """`initcli ARGS --help` as a user sees it, trailing blanks stripped."""
    from typer.testing import CliRunner

    from initcli.cli import app

    env = {"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH), "NO_COLOR": "1"}
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="initcli", env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"initcli {' '.join(args)} --help exited {result.exit_code}")
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    return "\n".join(lines).strip("\n")


def command_names() -> list[str]:
    """Every command of the app, in the order `initcli --help` lists them."""
    import typer.main

    from initcli.cli import app

    group = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(group, "commands", {})
    return [name for name, command in commands.items() if not command.hidden]


def render() -> str:
    """The whole page, as Markdown."""
    parts = [
        "# Command line",
        "",
        "Generated at build time from the Typer app (`docs/hooks/cli_reference.py`): each block is",
        "exactly what `initcli COMMAND --help` prints in a 100-column terminal. The guide pages",
        "explain the options with examples; [the contract](../contract/commands.md) says which",
        "behaviour is promised.",
        "",
        "## initcli",
        "",
        "```text",
        help_text(),
        "```",
    ]
    for name in command_names():
        parts += ["", f"## initcli {name}", "", "```text", help_text(name), "```"]
    return "\n".join(parts) + "\n"


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
