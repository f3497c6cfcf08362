"""SQL connector pieces shared by the ``sql`` source and sink: engines, errors, dialects.

Each module imports SQLAlchemy, so the ``sql`` kinds load them only when a component runs.
"""
