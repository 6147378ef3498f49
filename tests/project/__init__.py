"""Tests of the project as a whole: layout, lint, README and docs, samples, fuzzing."""
