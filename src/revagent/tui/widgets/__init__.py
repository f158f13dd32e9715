"""The TUI's widgets: header, thread tabs, thread view, account panel, command input."""
