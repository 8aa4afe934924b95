"""The command line: Typer commands (app.py) and the only code that prints or sets exit codes."""
