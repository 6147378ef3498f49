"""Tests of initcli.report: the reports behind each command."""
