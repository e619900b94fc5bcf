"""Pure policy rules; nothing here awaits, reads the clock or does I/O (STYLE.md rule 2)."""
