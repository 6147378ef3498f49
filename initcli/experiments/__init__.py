"""Forward/backward probes, training comparisons, data sets, seeds and paired tests, sweeps."""
