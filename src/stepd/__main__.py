"""`python -m stepd` is the `stepd` command."""

from stepd.cli.main import main

main()
