"""Client code of the connectors: one package per protocol, its exceptions mapped in one place."""
