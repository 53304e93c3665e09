"""Configuration: the settings object and the data that drives the pipeline (YAML)."""

from config.settings import Settings, SettingsError, get_settings, load_settings

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]
