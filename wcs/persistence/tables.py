"""Core ``Table`` handles for hot paths (statements without ORM unit-of-work cost)."""

from __future__ import annotations

from sqlalchemy import Table

from wcs.persistence.schema import Base

_T = Base.metadata.tables


def table(name: str) -> Table:
    return _T[name]


skus = _T["skus"]
sku_gtins = _T["sku_gtins"]
locations = _T["locations"]
stock = _T["stock"]
stock_moves = _T["stock_moves"]
orders = _T["orders"]
order_lines = _T["order_lines"]
reservations = _T["reservations"]
order_events = _T["order_events"]
outbox = _T["outbox"]
replenishment_requests = _T["replenishment_requests"]
devices = _T["devices"]
device_status_history = _T["device_status_history"]
alerts = _T["alerts"]
processed_messages = _T["processed_messages"]
leases = _T["leases"]
kv = _T["kv"]
api_tokens = _T["api_tokens"]
activity = _T["activity"]
alert_resolutions = _T["alert_resolutions"]
shipments = _T["shipments"]
shipment_events = _T["shipment_events"]
proofs_of_delivery = _T["proofs_of_delivery"]
sign_offs = _T["sign_offs"]
claims = _T["claims"]
customer_notices = _T["customer_notices"]
returns = _T["returns"]
return_lines = _T["return_lines"]
return_events = _T["return_events"]
waves = _T["waves"]
pick_batches = _T["pick_batches"]
pick_tasks = _T["pick_tasks"]
totes = _T["totes"]
qc_checks = _T["qc_checks"]
packages = _T["packages"]
device_commands = _T["device_commands"]
counters = _T["counters"]
picked_units = _T["picked_units"]
notify_requests = _T["notify_requests"]
notifications = _T["notifications"]
notification_preferences = _T["notification_preferences"]
backorder_choices = _T["backorder_choices"]
feedback = _T["feedback"]
couriers = _T["couriers"]
courier_absences = _T["courier_absences"]
fleet_parcels = _T["fleet_parcels"]
fleet_plans = _T["fleet_plans"]
fleet_routes = _T["fleet_routes"]
fleet_stops = _T["fleet_stops"]
stations = _T["stations"]
controller_instances = _T["controller_instances"]
floor_requests = _T["floor_requests"]
order_corrections = _T["order_corrections"]
link_uses = _T["link_uses"]
pick_faces = _T["pick_faces"]
count_tasks = _T["count_tasks"]
move_tasks = _T["move_tasks"]
stock_adjustments = _T["stock_adjustments"]
