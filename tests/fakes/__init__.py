"""Local fakes of external services for tests (servers on free ports, stopped after)."""
