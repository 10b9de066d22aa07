"""Warehouse control system: the shared kernel.

The kernel holds what the controller, the drivers, the device simulator and the API
all use: settings, the pure domain, persistence and the typed MQTT contract.
Dependencies point inward: nothing here imports ``controller``, ``api``, ``drivers``
or ``device_sim``.
"""

__version__ = "0.1.0"
