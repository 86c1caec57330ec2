"""Registers the suite's shared fixtures for every test under the repository.

``pytest_plugins`` is honoured only in the rootdir's conftest, hence this file;
the hooks stay in ``tests/conftest.py``.
"""

pytest_plugins = ["tests.scenarios.fixtures"]
