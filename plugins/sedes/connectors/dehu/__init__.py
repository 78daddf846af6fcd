"""DEHú (Dirección Electrónica Habilitada única): the LEMA and Realizadas web services."""

from plugins.sedes.connectors.dehu.connector import PRODUCTION_URL, TEST_URL, DehuConnector

__all__ = ["PRODUCTION_URL", "TEST_URL", "DehuConnector"]
