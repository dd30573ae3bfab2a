"""Database access: engine set-up, tables, migrations."""
