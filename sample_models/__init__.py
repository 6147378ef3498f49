"""Small example models (.py and .yaml) used by the docs examples and the test-suite."""
