"""alerts part of revagent; see ARCHITECTURE.md."""
