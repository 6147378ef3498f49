"""Large models for the benchmarks, in plain PyTorch (built on the meta device by the tests)."""
