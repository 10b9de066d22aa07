"""Conveyor diverters (one decision point each) on Modbus TCP."""
