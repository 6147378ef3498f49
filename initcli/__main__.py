"""`python -m initcli` runs the command-line tool."""

from initcli.cli import main

main()
