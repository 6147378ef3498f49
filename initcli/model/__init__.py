"""The model a TARGET names: resolve it, read a YAML spec, build it (on meta, with its record)."""
