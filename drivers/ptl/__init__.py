"""Pick-to-light panels on Modbus TCP (register map in mqtt_topics.md)."""
