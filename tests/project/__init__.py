"""Tests of the project as a whole: layout, lint, README, samples, fuzzing."""
