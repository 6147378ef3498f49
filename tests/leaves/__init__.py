"""Tests of the leaf utilities: files, limits, memory, text."""
