"""engine part of revagent; see ARCHITECTURE.md."""
