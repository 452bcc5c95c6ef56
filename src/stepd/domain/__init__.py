"""Pure values and rules of stepd: no I/O happens in this package."""
