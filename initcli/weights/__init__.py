"""Readers of weights files and folders, one module per format (checkpoint.load dispatches)."""
