"""Tests of initcli.weights: file formats, folders, did-it-load."""
