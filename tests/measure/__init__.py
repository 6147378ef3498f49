"""Tests of initcli.measure: statistics, identification, fans, counts."""
