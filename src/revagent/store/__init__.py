"""store part of revagent; see ARCHITECTURE.md."""
