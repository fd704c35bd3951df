"""SQLAlchemy models, migrations and the session helper."""
