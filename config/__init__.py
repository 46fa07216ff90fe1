"""Settings, gunicorn configuration and the menu definition of the service."""
