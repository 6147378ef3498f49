"""Tests of initcli.model: TARGET resolution, YAML specs, meta builds."""
