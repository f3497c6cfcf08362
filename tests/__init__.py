"""The test suite, imported as a package under pytest's importlib import mode."""
