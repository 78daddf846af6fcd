"""Ventanilla's platform core. Plugins import ``hookimpl`` from here."""

from core.hookspecs import hookimpl

__all__ = ["hookimpl"]
