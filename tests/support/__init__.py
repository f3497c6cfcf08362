"""Helpers shared by the tests: servers, service checks, pipeline runners, kill harnesses."""
