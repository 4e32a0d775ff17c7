"""Marketplace and shop connectors behind two small interfaces, and the registry of the kinds we support."""
