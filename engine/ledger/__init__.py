"""The provable log: typed events, canonical JSON, ids and clock, keys, HMAC chains,
Merkle trees, signed checkpoints, the store, the writer, pruning, verification and proofs.

It imports nothing of the engine but :mod:`engine.errors`. What sits above it (the
compliance rules) reaches it only through :class:`~engine.ledger.hooks.EventHook`.
Import from the modules; this package's top level stays light.
"""
