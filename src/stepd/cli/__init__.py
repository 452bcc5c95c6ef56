"""The `stepd` command."""
