from revagent.cli.main import run

run()
