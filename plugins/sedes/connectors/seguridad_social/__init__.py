"""Seguridad Social: the WSCN web service of Notificaciones Telemáticas (consulta y firma)."""

from plugins.sedes.connectors.seguridad_social.connector import PRODUCTION_URL, SeguridadSocialConnector

__all__ = ["PRODUCTION_URL", "SeguridadSocialConnector"]
