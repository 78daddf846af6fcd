"""Ventanilla's platform core. Plugins import from ``core.api`` only (see its docstring)."""
