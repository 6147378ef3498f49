"""Tests of initcli.init: schemes, auto, assignment, policies, torch's defaults, recorded fills, user code."""
