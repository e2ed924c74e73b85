"""Sensors: waits on transfers."""
