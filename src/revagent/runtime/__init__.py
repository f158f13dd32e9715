"""The runtime: the composition root (`session.Session`), its command channel (the server in
`commands.py`, the client in `remote.py`), the headless daemon, the doctor and its probe order."""
