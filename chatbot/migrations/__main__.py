"""python -m chatbot.migrations [upgrade | current | revision MESSAGE]

upgrade   bring RAGDESK_DATABASE_URL's database (default: the SQLite file in RAGDESK_DATA_DIR) to the newest
          schema (the app also does it on every start)
current   print the revision the database is at, and the newest
revision  write a new revision from the difference between the tables in code and an upgraded database"""

from __future__ import annotations

import sys

from alembic import command

from chatbot.migrations.schema import alembic_config, current_revision, head, upgrade_database
from chatbot.settings import Settings
from knowledge.database import open_database


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("upgrade", "current", "revision") or (argv[0] == "revision" and len(argv) < 2):
        print(__doc__, file=sys.stderr)
        return 2
    settings = Settings()
    engine = open_database(settings.sqlalchemy_url)
    if argv[0] == "upgrade":
        before = upgrade_database(engine)
        print(f"upgraded from {before or 'an empty database'} to {head()}")
    elif argv[0] == "current":
        with engine.connect() as connection:
            print(f"database at {current_revision(connection) or 'no revision'}; newest is {head()}")
    else:
        upgrade_database(engine)
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=" ".join(argv[1:]), autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
