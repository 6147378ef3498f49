"""Tests of initcli.init: schemes, policies, torch's defaults, user init code."""
