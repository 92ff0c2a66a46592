"""Schema migrations (Alembic): every table of every room, one revision per released schema change. The app
upgrades its database on every start (`upgrade_database`); `python -m chatbot.migrations` does it by hand."""
