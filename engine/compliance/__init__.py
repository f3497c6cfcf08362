"""Compliance over the ledger: rules (one module per standard in :mod:`.standards`),
conditions, risk, retention policy, approvals, reports and the ``[audit]`` settings.

The policy reaches the ledger's writer only as an :class:`~engine.ledger.hooks.EventHook`
and logs its own events through the writer's public ``emit``. Import from the modules;
this package's top level stays light.
"""
