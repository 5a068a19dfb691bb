"""Where a study lives: an Optuna RDB storage URL (SQLite by default, PostgreSQL to share a search
between machines), checked before the first trial — the URL's form, its driver, the server and the
file — so a bad storage is one line naming it instead of a SQLAlchemy traceback."""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable, Optional, TypeVar

from utils.errors import UserError, first_line
from utils.run_dir import TuneDir
from utils.run_lock import run_lock

T = TypeVar("T")
# the package that provides each SQLAlchemy driver, as a user installs it
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary] (pip install -e .[postgres], or pip install -r requirements-postgres.txt)",
    "psycopg2": "psycopg2-binary", "pg8000": "pg8000", "asyncpg": "asyncpg", "pymysql": "PyMySQL",
    "mysqldb": "mysqlclient", "mysqlconnector": "mysql-connector-python",
}
CONNECT_TIMEOUT = 10  # seconds to reach a database server


def default_url(root: Path) -> str:
    """The SQLite file beside the trials: `<root>/study.db`."""
    return f"sqlite:///{TuneDir(root).study_db.resolve()}"


def shown(url: str) -> str:
    """`url` with its password hidden, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def engine_kwargs(url: str) -> dict:
    """SQLite waits for a busy file; a server connection gives up after CONNECT_TIMEOUT."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith(("postgresql", "postgres", "mysql")):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    return {}


def check_storage(url: str) -> None:
    """Refuse, in one line, a URL that cannot work: unparsable, an unknown database, a driver that is not
    installed (naming the package to install), a server that does not answer, a file that is not a
    database."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as err:
        raise UserError(f"--storage {shown(url)}: not a usable database URL ({first_line(err)}); "
                        "e.g. sqlite:///study.db or postgresql://user:password@host:5432/db") from None
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = parsed.get_driver_name()
        package = DRIVER_PACKAGES.get(driver, driver)
        raise UserError(f"--storage {shown(url)}: its database driver '{driver}' is not installed; "
                        f"install {package}") from None
    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs(url))
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            if parsed.get_backend_name() == "sqlite":
                connection.exec_driver_sql("PRAGMA schema_version")  # reads the header: fails on a non-database
        engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise UserError(f"--storage {shown(url)}: cannot use the study database ({describe_db_error(err)})") from None


def describe_db_error(err: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's wrapping and links."""
    inner = getattr(err, "orig", None) or err
    return first_line(inner).split(" (Background on this error")[0]


def with_retries(connect: Callable[[], T], url: str, lock: Path, attempts: int = 4) -> T:
    """`connect()`, one process at a time on this machine (processes starting together would race to
    create the schema) and retried for processes on other machines sharing a server; a last failure
    is one line naming the storage."""
    import sqlalchemy

    with run_lock(lock, wait=True):
        for attempt in range(attempts):
            try:
                return connect()
            except sqlalchemy.exc.SQLAlchemyError:  # e.g. the schema being created by another machine
                time.sleep(1.0 + attempt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return connect()
        except sqlalchemy.exc.SQLAlchemyError as err:
            raise UserError(f"--storage {shown(url)}: cannot open the study ({describe_db_error(err)})") from None


def storage_for(url: Optional[str], root: Path) -> str:
    """The URL to use: `url`, or the default SQLite file under `root`."""
    return url or default_url(root)
