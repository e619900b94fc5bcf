"""Safeguarding Exchange Hub: lawful, proportionate, recorded multi-agency sharing."""

__version__ = "0.1.0"
__all__ = ["__version__"]
