"""Tests of initcli.experiments: probes, training, sweeps, seeds."""
