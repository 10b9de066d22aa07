"""Every table of the system, registered on one metadata.

Model modules are split by area (``models`` core, ``models_*`` per subsystem); this
module imports them all so migrations, tests and ``tables`` see the whole schema.
"""

from __future__ import annotations

from wcs.persistence import (
    models,
    models_delivery,
    models_fleet,
    models_floor,
    models_monitoring,
    models_notify,
    models_service,
    models_stock,
)
from wcs.persistence.models import Base

metadata = Base.metadata

__all__ = [
    "Base",
    "metadata",
    "models",
    "models_delivery",
    "models_fleet",
    "models_floor",
    "models_monitoring",
    "models_notify",
    "models_service",
    "models_stock",
]
