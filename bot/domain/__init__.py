"""Pure types and rules: no telegram, no sqlalchemy."""
