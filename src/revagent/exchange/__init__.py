"""exchange part of revagent; see ARCHITECTURE.md."""
