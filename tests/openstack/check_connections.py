#!/usr/bin/python3
"""Proves that the database credentials galley provisions for OpenStack services work the
way oslo.db uses them: each service's connection string (mysql+pymysql://user:pw@host:port/db)
is opened with PyMySQL directly and with SQLAlchemy's create_engine, and a table is created,
written, read and dropped in every database of the service.

Input, on standard input (never on the command line, where `ps` would show the passwords):
the JSON that `GET /api/v1/openstack` returns, {"services": [{"service", "databases",
"user", "config"}, ...]}. Options: --expect-port PORT fails unless every connection string
points at that port (the proxy's writer port).

Run with Debian's /usr/bin/python3 (apt: python3-pymysql, python3-sqlalchemy). Exits 0 when
every check passed; otherwise prints what failed and exits 1. Passwords are never printed.
"""

import argparse
import json
import re
import secrets
import sys

import pymysql
import sqlalchemy
from sqlalchemy.engine import make_url

CONNECTION_LINE = re.compile(r"^\s*connection\s*=\s*(\S+)\s*$", re.MULTILINE)


def connection_urls(config):
    """Every `connection = ...` line of a service's config (oslo.db's [database] and
    [api_database] sections both use that key)."""
    return CONNECTION_LINE.findall(config)



def check_with_pymysql(url, database):
    parsed = make_url(url)
    charset = parsed.query.get("charset", "utf8mb4")
    if isinstance(charset, tuple):
        charset = charset[0]
    table = "galley_check_" + secrets.token_hex(4)
    connection = pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=database,
        charset=charset,
        connect_timeout=10,
        read_timeout=30,
        write_timeout=30,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE `{table}` (id INT PRIMARY KEY, note VARCHAR(32)) ENGINE=InnoDB"
            )
            cursor.execute(f"INSERT INTO `{table}` VALUES (%s, %s)", (1, "pymysql"))
            connection.commit()
            cursor.execute(f"SELECT note FROM `{table}` WHERE id = 1")
            (note,) = cursor.fetchone()
            if note != "pymysql":
                raise AssertionError(f"read back {note!r}, wrote 'pymysql'")
            cursor.execute(f"DROP TABLE `{table}`")
    finally:
        connection.close()


def check_with_sqlalchemy(url, database):
    engine_url = make_url(url).set(database=database)
    table = "galley_check_" + secrets.token_hex(4)
    engine = sqlalchemy.create_engine(engine_url, pool_pre_ping=True)
    try:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text(
                    f"CREATE TABLE `{table}` (id INT PRIMARY KEY, note VARCHAR(32)) ENGINE=InnoDB"
                )
            )
            connection.execute(
                sqlalchemy.text(f"INSERT INTO `{table}` VALUES (:id, :note)"),
                {"id": 1, "note": "sqlalchemy"},
            )
        with engine.connect() as connection:
            note = connection.execute(
                sqlalchemy.text(f"SELECT note FROM `{table}` WHERE id = 1")
            ).scalar()
            if note != "sqlalchemy":
                raise AssertionError(f"read back {note!r}, wrote 'sqlalchemy'")
            current = connection.execute(sqlalchemy.text("SELECT DATABASE()")).scalar()
            if current != database:
                raise AssertionError(f"connected to {current!r}, not {database!r}")
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE `{table}`"))
    finally:
        engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expect-port", type=int, help="every connection string must use this port")
    arguments = parser.parse_args()

    document = json.load(sys.stdin)
    services = document.get("services") or []
    if not services:
        print("error: no provisioned services in the input", file=sys.stderr)
        return 1

    failures = []
    checked = 0
    for service in services:
        name = service["service"]
        urls = connection_urls(service.get("config", ""))
        if not urls:
            failures.append(f"{name}: no 'connection = ' line in its config")
            continue
        for url in urls:
            parsed = make_url(url)
            if parsed.drivername != "mysql+pymysql":
                failures.append(f"{name}: driver {parsed.drivername!r}, oslo.db expects 'mysql+pymysql'")
            if arguments.expect_port is not None and parsed.port != arguments.expect_port:
                failures.append(f"{name}: port {parsed.port}, expected the proxy writer port {arguments.expect_port}")
            if parsed.database not in service["databases"]:
                failures.append(f"{name}: connection to {parsed.database!r}, not one of its databases {service['databases']}")
        # Every database of the service, with the credentials of its connection string:
        # nova's one account reaches nova, nova_api and nova_cell0.
        for database in service["databases"]:
            url = next((u for u in urls if make_url(u).database == database), urls[0])
            for driver, check in (("pymysql", check_with_pymysql), ("sqlalchemy", check_with_sqlalchemy)):
                try:
                    check(url, database)
                    checked += 1
                    print(f"ok {name} {database} {driver} as {make_url(url).username}@{make_url(url).host}:{make_url(url).port}")
                except Exception as error:  # report every failure, not only the first
                    # Error texts from the drivers name the user and host, never the password.
                    failures.append(f"{name} {database} {driver}: {type(error).__name__}: {error}")

    for failure in failures:
        print(f"FAILED {failure}")
    print(f"{checked} connection checks passed, {len(failures)} problems, {len(services)} services")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
