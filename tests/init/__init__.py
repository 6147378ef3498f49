"""Tests of initcli.init: schemes, auto, assign, policies, torch's defaults, recorded, user code."""
