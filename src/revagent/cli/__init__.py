"""cli part of revagent; see ARCHITECTURE.md."""
