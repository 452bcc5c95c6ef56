"""The reactor: the catalog of configs, the evaluation of a batch of events, and the process
that runs it beside the API (`reactor.py`, `process.py`, `catalog.py`)."""
