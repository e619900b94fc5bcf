"""Pure policy rules; nothing here awaits, reads the clock or does I/O (STYLE.md rule 2).

``hub.policy.engine.evaluate(fields, facts, registry)`` runs every rule over a message;
the registries in ``schemas/registry/`` hold the law and guidance as data
(``hub.policy.registry.load_registry``).
"""
