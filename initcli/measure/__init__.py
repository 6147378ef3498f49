"""Numbers about tensors and modules: moments, identification, fans, counts, verdicts."""
