"""`revagent` with the doctor command mounted if cli/main.py does not mount it yet (used by the tests)."""

from revagent.cli.main import app

if "doctor" not in {c.name for c in app.registered_commands}:
    from revagent.cli.doctor import doctor

    app.command("doctor")(doctor)

if __name__ == "__main__":
    app()
