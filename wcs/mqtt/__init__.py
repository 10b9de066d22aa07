"""MQTT plumbing shared by every process: client factory and the embedded broker."""
