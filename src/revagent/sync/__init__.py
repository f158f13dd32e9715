"""sync part of revagent; see ARCHITECTURE.md."""
