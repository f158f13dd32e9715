"""Modal screens: confirmations and prompts."""
