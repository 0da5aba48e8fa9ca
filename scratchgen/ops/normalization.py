"""Placeholder: filled in by the foundation work."""
__all__ = []
