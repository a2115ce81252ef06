"""pytest configuration: the `slow` marker (tests that start several processes; deselect with -m "not slow")."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts Ray clusters or several training processes (minutes)")
