"""The runner contract suite (issue 4).

This directory is a package on purpose: a second plain `conftest.py` would replace
the root one in `sys.modules["conftest"]` for every module collected after it, and
`from conftest import ...` in tests/test_client.py would then break. As a package,
this conftest is `runner.conftest` and the root one stays `conftest`.
"""
