"""A model's values one tensor at a time: a named scheme, reset_parameters, or a replay."""
