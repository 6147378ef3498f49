"""Tests of the command line: exit codes, formats, golden output."""
