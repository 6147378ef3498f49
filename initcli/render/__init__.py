"""Write reports: one module per command family (JSON object, rows, rich tables), one writer."""

# The only package that imports rich; it never imports torch at module level and does no tensor
# math.

from initcli.render.writer import OutputFormat, View, file_console, stdout_console, write

__all__ = ["OutputFormat", "View", "file_console", "stdout_console", "write"]
