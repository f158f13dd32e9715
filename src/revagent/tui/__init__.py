"""tui part of revagent; see ARCHITECTURE.md."""
