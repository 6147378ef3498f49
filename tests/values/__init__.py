"""Tests of initcli.values: values one tensor at a time, streamed and replayed."""
