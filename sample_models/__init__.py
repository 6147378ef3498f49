"""Small example models (.py and .yaml) used by the README and the test-suite."""
