"""pygeoapi's process manager for geoby: jobs in PostGIS (``geoby.jobs``).

:class:`PostGISManager` keeps every execution of an OGC API process as a row
of ``geoby.jobs`` (see ``layers/migrations/0005_jobs.sql``), written through
the ``admin`` pool. With ``Prefer: respond-async`` a job runs in a background
thread and the API answers 201 with its ``Location``; otherwise it runs in
the request.

* **Bad input leaves no job.** A :class:`~api.ogc.processes.GeobyProcessor`'s
  ``validate`` runs before the job row is written; its error is a 400.
* **Results.** A JSON result (object or list) up to :data:`MAX_JSONB_BYTES` is
  kept in the row's ``result``; any other result is a file in ``output_dir``
  named by ``location``.
* **Failures.** A failed job's ``message`` holds what the user may see (the
  process's own message, or a generic one); the full error goes to ``error``
  and the log only, so no SQL text or path leaks through ``/jobs``.
* **Dismissal.** ``DELETE /jobs/{id}`` marks the row ``dismissed`` and removes
  its result (column and file); the API then no longer shows the job. A job
  dismissed while it runs keeps running (a thread cannot be stopped), but its
  result is discarded.
* **Restarts.** Job threads die with the process. While a job runs, its
  process holds a PostgreSQL advisory lock on the job (``JOB_LOCK_SPACE``, the
  hash of its id) on a connection of its own; the server drops the lock the
  moment that process dies (``kill -9``, a crash, a lost host), so a lock
  nobody holds on a ``running`` job means its worker is gone, on whichever
  host it ran. When a manager starts (once per app), such jobs are marked
  failed at once, "interrupted by a restart", without waiting for the clock;
  so are jobs still ``accepted`` or ``running`` whose ``updated`` is older than
  :data:`STALE_AFTER` (a job that never started, or one a process of an older
  version ran without the lock: every API process on one database should run
  the same version). A running job also touches its ``updated`` every
  :data:`HEARTBEAT_S` seconds. Jobs a second live process runs hold their lock
  and are left alone. A failed job's partial results are then discarded by
  its processor (``discard(inputs)``, e.g. the layers of a flood scenario cut
  off halfway), unless a live job runs the same process on the same inputs.
* Callbacks (``subscriber``) are not supported: the server would post to any
  URL a caller names.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json, RealDictCursor
from pygeoapi.process.base import (
    BaseProcessor,
    JobNotFoundError,
    JobResultNotFoundError,
    ProcessorExecuteError,
)
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import DATETIME_FORMAT, JobStatus, RequestedResponse

from api.ogc import config, context
from api.ogc.processes import GeobyProcessor
from layers.database import Database, connect
from layers.errors import GeobyError

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0
STALE_AFTER = timedelta(minutes=10)
INTERRUPTED = "interrupted by a restart"
MAX_JSONB_BYTES = 8 * 1024 * 1024
JSON_TYPES = (None, "application/json", "application/ld+json")

# pygeoapi's job keys and the columns they are stored in.
_KEYS = {"type": "job_type"}
_WRITABLE = {
    "identifier", "process_id", "job_type", "status", "message", "progress", "created",
    "started", "finished", "updated", "location", "mimetype", "result", "inputs", "error",
}  # fmt: skip
_SELECT = sql.SQL(
    "SELECT identifier, process_id, job_type AS type, status, message, progress, created,"
    " COALESCE(started, created) AS started, finished, updated, location, mimetype"
    " FROM geoby.jobs"
)
JOB_LOCK_SPACE = 0x6A6F62  # "job": the first key of every job's advisory lock
_recovered: set[str] = set()
_recovered_lock = threading.Lock()

# A running job whose lock can be taken has lost its process (the lock taken here is
# released when this statement's transaction ends).
_RECOVER_SQL = """
UPDATE geoby.jobs SET status = 'failed', message = %(why)s, error = %(why)s,
       finished = now(), updated = now()
 WHERE status IN ('accepted', 'running')
   AND (updated < now() - %(older_than)s
        OR (status = 'running' AND started IS NOT NULL
            AND pg_try_advisory_xact_lock(%(space)s, hashtext(identifier))))
RETURNING identifier, process_id, inputs
"""


def recover(database: Database, *, older_than: timedelta = STALE_AFTER) -> list[tuple]:
    """Mark jobs whose process is gone as failed; their ``(identifier, process_id, inputs)``.

    Gone: a running job whose advisory lock nobody holds, or any unfinished job
    not updated for ``older_than`` (see the module notes).
    """
    params = {"why": INTERRUPTED, "older_than": older_than, "space": JOB_LOCK_SPACE}
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(_RECOVER_SQL, params)
        rows = cur.fetchall()
    if rows:
        log.warning("marked %d unfinished job(s) failed: %s", len(rows), INTERRUPTED)
    return rows


def recover_interrupted(database: Database, *, older_than: timedelta = STALE_AFTER) -> int:
    """Mark unfinished jobs whose process is gone as failed (:func:`recover`); how many."""
    return len(recover(database, older_than=older_than))


class _JobLock:
    """The advisory lock a running job holds, on a connection of its own, while it runs."""

    def __init__(self, database: Database, job_id: str) -> None:
        self._conn = connect(database.dsn("admin"), application_name=f"geoby-job {job_id}")
        self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (JOB_LOCK_SPACE, job_id))

    def release(self) -> None:
        """Give the lock up (closing the connection is enough: the server drops it)."""
        self._conn.close()


class PostGISManager(BaseManager):
    """Jobs of the OGC API - Processes in ``geoby.jobs`` (see the module notes).

    Parameters
    ----------
    manager_def
        pygeoapi's ``server.manager``: ``connection`` is the key of the app's
        :class:`~api.ogc.context.OgcContext`, ``output_dir`` the folder of
        result files.
    """

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.is_async = True
        self.supports_subscribing = False
        self.context = context.lookup(manager_def["connection"])
        self.database = self.context.database
        if self.output_dir is None:
            self.output_dir = self.context.settings.data_dir / "jobs"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with _recovered_lock:
            if self.context.key not in _recovered:
                for job_id, process_id, inputs in recover(self.database):
                    self._discard(job_id, process_id, inputs)
                _recovered.add(self.context.key)

    def _discard(self, job_id: str, process_id: str, inputs: dict | None) -> None:
        """Let the processor of an interrupted job remove its partial results."""
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(  # a live job on the same inputs writes the same results: leave them
                "SELECT count(*) FROM geoby.jobs WHERE status IN ('accepted', 'running')"
                " AND process_id = %s AND inputs = %s AND identifier <> %s",
                (process_id, Json(inputs), job_id),
            )
            if cur.fetchone()[0]:
                return
        try:
            processor = self.get_processor(process_id)
            discard = getattr(processor, "discard", None)
            if discard is not None and inputs is not None:
                discard(inputs)
                log.warning("job %s: partial results of %s discarded", job_id, process_id)
        except Exception:  # noqa: BLE001 - recovery must not stop the API from starting
            log.exception("job %s: partial results of %s could not be discarded",
                          job_id, process_id)  # fmt: skip

    def get_processor(self, process_id: str) -> BaseProcessor:
        processor = super().get_processor(process_id)
        if isinstance(processor, GeobyProcessor):
            processor.bind(self.context)
        return processor

    # -- the job store ------------------------------------------------------------

    def get_jobs(
        self,
        status: JobStatus | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict:
        """Jobs, newest first, without dismissed ones: ``{'jobs', 'numberMatched'}``."""
        where = sql.SQL(
            " WHERE status <> 'dismissed' AND (%(status)s IS NULL OR status = %(status)s)"
        )
        params = {
            "status": JobStatus(status).value if status else None,
            "limit": limit,
            "offset": offset or 0,
        }
        with self.database.connection("admin") as conn:
            with conn.cursor(cursor_factory=RealDictCursor) as cur:
                cur.execute(
                    _SELECT + where + sql.SQL(" ORDER BY created DESC, identifier"
                                              " LIMIT %(limit)s OFFSET %(offset)s"),
                    params,
                )  # fmt: skip
                jobs = [_job(row) for row in cur.fetchall()]
                cur.execute(sql.SQL("SELECT count(*) AS n FROM geoby.jobs") + where, params)
                matched = cur.fetchone()["n"]
        return {"jobs": jobs, "numberMatched": matched}

    def add_job(self, job_metadata: dict) -> str:
        """Insert a job row; returns its identifier."""
        values = _columns(job_metadata)
        query = sql.SQL("INSERT INTO geoby.jobs ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder(name) for name in values),
        )
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(query, values)
        return job_metadata["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Update a job that was not dismissed; returns whether it was."""
        values = _columns(update_dict)
        if not values:
            return False
        query = sql.SQL(
            "UPDATE geoby.jobs SET {} WHERE identifier = %(_id)s AND status <> 'dismissed'"
        ).format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
                for name in values
            )
        )
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(query, {**values, "_id": job_id})
            return cur.rowcount == 1

    def get_job(self, job_id: str) -> dict:
        """One job, as pygeoapi's API reads it.

        Raises
        ------
        JobNotFoundError
            No such job, or it was dismissed.
        """
        with self.database.connection("admin") as conn:
            with conn.cursor(cursor_factory=RealDictCursor) as cur:
                cur.execute(
                    _SELECT + sql.SQL(" WHERE identifier = %s AND status <> 'dismissed'"),
                    (job_id,),
                )
                row = cur.fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        return _job(row)

    def get_job_result(self, job_id: str) -> tuple[str | None, Any]:
        """The mimetype and output of a successful job.

        Raises
        ------
        JobNotFoundError
            No such job, or it was dismissed.
        JobResultNotFoundError
            The job has no result (not successful, or its file is gone).
        """
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT status, mimetype, result, location FROM geoby.jobs"
                " WHERE identifier = %s AND status <> 'dismissed'",
                (job_id,),
            )
            row = cur.fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        status, mimetype, result, location = row
        if status != JobStatus.successful.value:
            raise JobResultNotFoundError(job_id)
        if result is not None:
            return mimetype, result
        path = self._result_path(location)
        if path is None or not path.is_file():
            log.error("job %s: result file %s is missing", job_id, location)
            raise JobResultNotFoundError(job_id)
        if mimetype in JSON_TYPES:
            return mimetype, json.loads(path.read_text(encoding="utf-8"))
        return mimetype, path.read_bytes()

    def delete_job(self, job_id: str) -> bool:
        """Dismiss a job: status ``dismissed``, result and result file removed.

        Raises
        ------
        JobNotFoundError
            No such job, or it was dismissed already.
        """
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT location FROM geoby.jobs"
                " WHERE identifier = %s AND status <> 'dismissed' FOR UPDATE",
                (job_id,),
            )
            row = cur.fetchone()
            if row is None:
                raise JobNotFoundError(job_id)
            cur.execute(
                "UPDATE geoby.jobs SET status = 'dismissed', message = 'Job dismissed',"
                " result = NULL, location = NULL, updated = now(),"
                " finished = COALESCE(finished, now()) WHERE identifier = %s",
                (job_id,),
            )
        self._remove(row[0])
        return True

    # -- execution ----------------------------------------------------------------

    def execute_process(self, process_id: str, data_dict: dict, *args, **kwargs):
        """Validate the inputs of a geoby process, then run pygeoapi's execution."""
        processor = self.get_processor(process_id)
        if isinstance(processor, GeobyProcessor):
            processor.validate(data_dict)
        return super().execute_process(process_id, data_dict, *args, **kwargs)

    def _execute_handler_sync(
        self,
        p: BaseProcessor,
        job_id: str,
        data_dict: dict,
        requested_outputs: dict | None = None,
        subscriber: Any = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, Any, JobStatus]:
        running = {"status": "running", "started": _now(), "updated": _now(),
                   "message": "Job running", "progress": 10, "inputs": data_dict}  # fmt: skip
        lock = _JobLock(self.database, job_id)  # before 'running': see the module notes
        try:
            return self._run(p, job_id, data_dict, running, requested_outputs,
                             requested_response)  # fmt: skip
        finally:
            lock.release()

    def _run(self, p: BaseProcessor, job_id: str, data_dict: dict,
             running: dict, requested_outputs: dict | None,
             requested_response: str | None) -> tuple[str, Any, JobStatus]:  # fmt: skip
        if not self.update_job(job_id, running):
            log.info("job %s was dismissed before it started", job_id)
            return "application/json", None, JobStatus.dismissed
        try:
            with _Heartbeat(self, job_id):
                kwargs = {"outputs": requested_outputs} if p.supports_outputs else {}
                mimetype, outputs = p.execute(data_dict, **kwargs)
            if requested_response == RequestedResponse.document.value:
                outputs = {"outputs": [outputs]}
            stored = self._store(p, job_id, mimetype, outputs)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
            error = _process_error(exc)
            self.update_job(job_id, {"status": "failed", "finished": _now(), "updated": _now(),
                                     "message": error.message, "error": _detail(exc)})  # fmt: skip
            raise error from exc
        done = {"status": "successful", "finished": _now(), "updated": _now(),
                "message": "Job complete", "progress": 100, "mimetype": mimetype, **stored}  # fmt: skip
        if not self.update_job(job_id, done):  # dismissed while it ran
            self._remove(stored.get("location"))
        return mimetype, outputs, JobStatus.successful

    def _execute_handler_async(
        self,
        p: BaseProcessor,
        job_id: str,
        data_dict: dict,
        requested_outputs: dict | None = None,
        subscriber: Any = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, Any, JobStatus]:
        self.update_job(job_id, {"inputs": data_dict})
        args = (p, job_id, data_dict, requested_outputs, None, requested_response)
        # A daemon: a restart does not wait for long jobs; recovery marks them failed.
        threading.Thread(target=self._background, args=args, name=f"job-{job_id}",
                         daemon=True).start()  # fmt: skip
        return "application/json", self._status_info(p, job_id), JobStatus.accepted

    def _background(self, *args: Any) -> None:
        try:
            self._execute_handler_sync(*args)
        except ProcessorExecuteError:
            pass  # recorded on the job and logged
        except Exception:  # noqa: BLE001 - the database failed; nothing else can record it
            log.exception("job %s could not be recorded", args[1])

    def _status_info(self, p: BaseProcessor, job_id: str) -> dict:
        """The OGC statusInfo document a 201 answers with."""
        href = f"{config.base_url(self.context)}/jobs/{job_id}"
        return {
            "type": "process",
            "processID": p.metadata["id"],
            "jobID": job_id,
            "status": JobStatus.accepted.value,
            "message": "Job accepted and ready for execution",
            "links": [
                {"href": href, "rel": "monitor", "type": "application/json", "title": "Job status"}
            ],  # fmt: skip
        }

    def _store(self, p: BaseProcessor, job_id: str, mimetype: str, outputs: Any) -> dict:
        """Where a result goes: ``result`` (small JSON) or a file named by ``location``."""
        if isinstance(outputs, dict | list):
            text = json.dumps(outputs)
            if len(text) <= MAX_JSONB_BYTES:
                return {"result": outputs, "location": None}
            data: bytes = text.encode()
        elif isinstance(outputs, bytes):
            data = outputs
        elif isinstance(outputs, str):
            data = outputs.encode()
        else:
            raise TypeError(f"process {p.metadata['id']} returned a {type(outputs).__name__}")
        path = self.output_dir / f"{p.metadata['id']}-{job_id}"
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
        return {"result": None, "location": str(path)}

    def _result_path(self, location: str | None) -> Path | None:
        """``location`` if it lies in ``output_dir`` (the only files a job may own)."""
        if not location:
            return None
        path = Path(location).resolve()
        return path if path.parent == self.output_dir.resolve() else None

    def _remove(self, location: str | None) -> None:
        path = self._result_path(location)
        if path is not None:
            path.unlink(missing_ok=True)

    def touch(self, job_id: str) -> None:
        """Record that a running job is alive (its heartbeat)."""
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE geoby.jobs SET updated = now() WHERE identifier = %s AND status = 'running'",
                (job_id,),
            )

    def __repr__(self) -> str:
        return f"<PostGISManager> {self.name}"


class _Heartbeat:
    """Touches a running job every :data:`HEARTBEAT_S` seconds until the block ends."""

    def __init__(self, manager: PostGISManager, job_id: str) -> None:
        self._manager, self._job_id = manager, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}",
                                        daemon=True)  # fmt: skip

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._manager.touch(self._job_id)
            except GeobyError as exc:
                log.warning("job %s: heartbeat failed: %s", self._job_id, exc)


def _columns(job: dict) -> dict[str, Any]:
    """pygeoapi's job keys as column values; unknown keys are ignored."""
    values: dict[str, Any] = {}
    for key, value in job.items():
        column = _KEYS.get(key, key)
        if column not in _WRITABLE:
            log.debug("job key %s is not stored", key)
            continue
        values[column] = (
            Json(value) if column in ("result", "inputs") and value is not None else value
        )
    return values


def _job(row: dict) -> dict[str, Any]:
    """A row as pygeoapi's job dict, times in its UTC format."""
    job = dict(row)
    for key in ("created", "started", "finished", "updated"):
        if job[key] is not None:
            job[key] = job[key].astimezone(UTC).strftime(DATETIME_FORMAT)
    return job


def _now() -> datetime:
    return datetime.now(UTC)


def _process_error(exc: Exception) -> ProcessorExecuteError:
    """The error a client sees for a failed job: the process's message, or a generic one."""
    if isinstance(exc, ProcessorExecuteError):
        return exc
    if isinstance(exc, GeobyError):
        error = ProcessorExecuteError(user_msg=exc.detail)
        error.http_status_code = exc.status
        error.ogc_exception_code = "InvalidParameterValue" if exc.status == 400 else exc.code
        return error
    log.error("process failed", exc_info=exc)
    return ProcessorExecuteError(user_msg="the process failed; the error has been logged")


def _detail(exc: Exception) -> str:
    """The operator's account of a failure (kept in ``error``, never shown by the API)."""
    if isinstance(exc, GeobyError) and exc.log_detail:
        return f"{type(exc).__name__}: {exc.detail} ({exc.log_detail})"
    return f"{type(exc).__name__}: {exc}"
