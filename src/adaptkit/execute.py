"""Run independent jobs (study cells, per-robot collection, per-body gait searches) in this
process, in local worker processes or as Ray tasks, with the results folder as the one source
of truth.

A job is finished iff its `done` file exists (its function writes it atomically), so a rerun
skips finished jobs whichever executor ran them. Before running a job its runner claims it:
`claims/<id>.claim` is created with O_EXCL and holds the runner's host, pid and start time; the
runner touches it while the job runs (a heartbeat) and removes it after. A claim whose owner is
gone (same host, pid dead) or whose heartbeat is older than the lease is taken over, so a
killed worker's job runs again on the rerun, and two executors pointed at one folder never run
one job at the same time. Claim decisions are serialised per job with an flock on
`claims/<id>.lock` (released by the kernel when its holder dies, so it never goes stale).

Executors: "inline" (one after another here), "local" (spawned worker processes; default as
many as the cores allow given each job's cpus), "ray:auto" / "ray:ADDRESS" (each job a Ray task
declaring its CPUs and GPUs; `pip install 'adaptkit[ray]'`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.progress import SILENT, Reporter

try:  # POSIX; without it claims still rely on O_EXCL, only a takeover can race
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

EXECUTORS = ("inline", "local", "ray:auto", "ray:ADDRESS")
CLAIM_LEASE_S = (
    300.0  # a claim not touched for this long is taken over (a runner on another host died)
)
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    """One independent piece of work: `fn(**kwargs)` writes `done` atomically when it succeeds.
    `fn` must be a module-level function and `kwargs` picklable (they travel to workers)."""

    id: str
    done: Path
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    cpus: int = 1
    gpus: float = 0.0
    threads: int = 1  # torch/OMP threads set in the worker before fn runs


@dataclass(frozen=True)
class RunSummary:
    """What `run_jobs` did: `skipped` were done before, `ran` finished now, `busy` were claimed
    by another live runner, `failed` maps a job id to its one-line error (`details` to the
    traceback, for errors that are not AdaptkitError)."""

    total: int
    skipped: tuple[str, ...] = ()
    ran: tuple[str, ...] = ()
    busy: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every job is done (none failed, none left to another runner)."""
        return not self.failed and not self.busy


# -- claims -----------------------------------------------------------------------------------
def run_wave(
    what: str,
    jobs: Sequence[Job],
    claims: Path,
    executor: str,
    workers: int | None,
    reporter: Reporter,
    failed: dict[str, str],
) -> RunSummary:
    """One wave of a staged run (a study's collection, bases, cells…): says what it runs, runs
    it, and adds its failed jobs — and those another live runner still holds — to `failed`."""
    if jobs:
        reporter.note(f"{what}, {len(jobs)} job(s) on {executor}")
    s = run_jobs(jobs, claims, executor, workers, reporter)
    failed.update(s.failed)
    failed.update({i: "claimed by another runner still running it" for i in s.busy})
    return s


def raise_failed(what: str, failed: Mapping[str, str], out: Path) -> None:
    """After a run whose results are saved: one line naming the failed jobs (none: nothing)."""
    if failed:
        first = next(iter(failed.items()))
        raise AdaptkitError(
            f"{what}: {len(failed)} job(s) failed ({', '.join(failed)}); the others are in {out} "
            f"and a rerun runs only what is missing. {first[0]}: {first[1]}"
        )


def _claim_path(claims: Path, job_id: str) -> Path:
    return claims / f"{job_id}.claim"


@contextlib.contextmanager
def _job_lock(claims: Path, job_id: str) -> Iterator[None]:
    """Serialise claim decisions on one job across processes and hosts sharing the folder."""
    if fcntl is None:
        yield
        return
    fd = os.open(claims / f"{job_id}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's owner ({host, pid, started, pid_start}); None when there is none. An empty or
    unreadable claim gives {} (an owner nobody can name)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except (OverflowError, ValueError):  # not a pid this system can have
        return False
    try:  # a zombie (dead, not reaped yet) is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux /proc); None elsewhere or
    when it is gone. With the pid it names one process: a pid reused later starts later."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return None


def _owner_gone(owner: Mapping[str, Any]) -> bool:
    """A same-host claim whose process is dead, or whose pid names another process now: where
    /proc tells when a process started, the claim must record that start (`pid_start`) and it
    must match, else the pid was reused (or the claim was not written by a runner)."""
    pid = owner.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or not _pid_alive(pid):
        return True
    start = _process_start(pid)
    if start is None:
        return False  # not Linux (or it just ended): the pid alone decides
    recorded = owner.get("pid_start")
    return isinstance(recorded, bool) or recorded != start


def claim_is_stale(path: Path, lease_s: float = CLAIM_LEASE_S, locked: bool = False) -> bool:
    """The claim's owner is gone: same host and its pid is dead (or reused by another
    process), or no heartbeat for a lease. `locked`: the caller holds the job's lock, under
    which claims are written whole, so an empty or garbled claim is nobody's (a crash between
    create and write, a foreign file) and is stale at once."""
    owner = read_claim(path)
    if owner is None:
        return False
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > lease_s:
        return True
    if not owner:
        return locked and fcntl is not None
    return owner.get("host") == socket.gethostname() and _owner_gone(owner)


class Claim:
    """A held claim on one job, kept fresh by a heartbeat thread until `release()`."""

    def __init__(self, path: Path, lease_s: float) -> None:
        self.path = path
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(lease_s / 5,), daemon=True)
        self._beat.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        self.path.unlink(missing_ok=True)


def take_claim(claims: Path, job_id: str, lease_s: float = CLAIM_LEASE_S) -> Claim | None:
    """Claim the job for this process, taking over a stale claim; None if a live runner holds
    it."""
    claims.mkdir(parents=True, exist_ok=True)
    path = _claim_path(claims, job_id)
    pid = os.getpid()
    owner = {
        "host": socket.gethostname(),
        "pid": pid,
        "started": time.time(),
        "pid_start": _process_start(pid),
    }
    with _job_lock(claims, job_id):
        if path.exists():
            if not claim_is_stale(path, lease_s, locked=True):
                return None
            path.unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:  # a runner without the lock (no flock here) got there first
            return None
        with os.fdopen(fd, "w") as fh:
            json.dump(owner, fh)
    return Claim(path, lease_s)


# -- running one job (in whichever process the executor chose) ---------------------------------
@dataclass(frozen=True)
class _Outcome:
    id: str
    status: str  # "ran", "skipped", "busy", "failed"
    seconds: float = 0.0
    error: str = ""
    detail: str = ""


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """torch/OMP threads for the job (torch only if the job's module already imported it)."""
    saved_env = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(n) for k in _THREAD_VARS})
    torch = sys.modules.get("torch")
    saved = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if torch is not None and saved is not None:
            torch.set_num_threads(saved)


def run_one(job: Job, claims: Path, lease_s: float = CLAIM_LEASE_S) -> _Outcome:
    """Claim and run one job here; never raises for the job's own errors."""
    if job.done.exists():
        return _Outcome(job.id, "skipped")
    claim = take_claim(claims, job.id, lease_s)
    if claim is None:
        return _Outcome(job.id, "busy")
    t0 = time.perf_counter()
    try:
        if job.done.exists():  # finished by another runner between our look and our claim
            return _Outcome(job.id, "skipped")
        with _threads(job.threads):
            job.fn(**job.kwargs)
        if not job.done.exists():
            raise AdaptkitError(f"job {job.id}: finished without writing {job.done}")
        return _Outcome(job.id, "ran", time.perf_counter() - t0)
    except Exception as exc:
        if isinstance(exc, AdaptkitError):
            error, detail = str(exc), ""
        else:
            error, detail = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        return _Outcome(job.id, "failed", time.perf_counter() - t0, error, detail)
    finally:
        claim.release()


# -- executors ------------------------------------------------------------------------------
def parse_executor(executor: str) -> tuple[str, str | None]:
    """("inline"|"local"|"ray", ray address or None) from "inline", "local", "ray:ADDRESS"."""
    kind, _, address = executor.partition(":")
    if kind in ("inline", "local") and not address:
        return kind, None
    if kind == "ray" and address:
        return kind, address
    raise AdaptkitError(f"executor {executor!r}: expected one of {', '.join(EXECUTORS)}")


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def default_workers(jobs: Sequence[Job]) -> int:
    """As many workers as the cores allow given the most CPUs any job needs."""
    need = max((j.cpus for j in jobs), default=1)
    return max(1, available_cpus() // max(1, need))


class _Progress:
    """done/total notes with an ETA from the mean seconds per finished job."""

    def __init__(self, reporter: Reporter, total: int, done: int) -> None:
        self.reporter, self.total, self.finished = reporter, total, done
        self.ran, self.t0 = 0, time.perf_counter()

    def record(self, o: _Outcome) -> None:
        note = self.reporter.note
        if o.status == "skipped":
            return
        if o.status == "busy":
            note(f"{o.id}: claimed by another live runner: left to it")
            return
        self.finished += 1
        head = f"{self.finished}/{self.total} {o.id}"
        if o.status == "failed":
            note(f"{head} failed: {o.error}")
            return
        self.ran += 1
        left = self.total - self.finished
        wall = time.perf_counter() - self.t0
        eta = f"; ≈ {wall / self.ran * left / 60:.1f} min left" if left else ""
        note(f"{head} done in {o.seconds:.0f} s{eta}")


def run_jobs(
    jobs: Sequence[Job],
    claims: Path,
    executor: str = "local",
    workers: int | None = None,
    reporter: Reporter = SILENT,
    lease_s: float = CLAIM_LEASE_S,
) -> RunSummary:
    """Run every job whose `done` file is missing on `executor`; a job that fails is reported
    with its id and error and the others go on (the caller decides what a failure means)."""
    kind, address = parse_executor(executor)
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise AdaptkitError(
            f"run_jobs: job ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    if workers is not None and workers < 1:
        raise AdaptkitError(f"--workers: expected an integer >= 1, got {workers}")
    claims = Path(claims)
    claims.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    skipped = [j.id for j in jobs if j.done.exists()]
    todo = [j for j in jobs if not j.done.exists()]
    n = workers or default_workers(todo)
    if skipped:
        reporter.note(f"{len(skipped)} of {len(jobs)} already done: skipped")
    progress = _Progress(reporter, len(jobs), len(skipped))
    outcomes: list[_Outcome] = []

    def record(o: _Outcome) -> None:
        outcomes.append(o)
        progress.record(o)

    if todo:
        if kind == "inline":
            for job in todo:
                record(run_one(job, claims, lease_s))
        elif kind == "local":
            # a kept pool keeps its size across waves; a pool for this call alone, no more
            # workers than jobs
            size = n if _KEPT.get() is not None else min(n, len(todo))
            _run_local(todo, claims, size, lease_s, record)
        else:
            _run_ray(todo, claims, address or "auto", lease_s, record)
    by = {s: tuple(o.id for o in outcomes if o.status == s) for s in ("ran", "busy", "skipped")}
    failed = [o for o in outcomes if o.status == "failed"]
    return RunSummary(
        total=len(jobs),
        skipped=(*skipped, *by["skipped"]),
        ran=by["ran"],
        busy=by["busy"],
        failed={o.id: o.error for o in failed},
        details={o.id: o.detail for o in failed if o.detail},
        seconds=time.perf_counter() - t0,
    )


class WorkerPool:
    """Spawned worker processes for `local` jobs, started on first use and kept until `close`:
    a study's waves reuse them (torch and the simulator are imported once per worker, not once
    per wave). A pool that broke (a worker died) is replaced by a fresh one on next use."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0

    def get(self, workers: int, threads: int) -> ProcessPoolExecutor:
        """A pool of at least `workers` processes (a wave that wants more starts a bigger one;
        the first pool's thread setting stays: each job sets its own threads anyway)."""
        if self._pool is not None and self._size < workers:
            self.close()
        if self._pool is None:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                workers, ctx, initializer=_worker_init, initargs=(threads, os.getpid())
            )
            self._size = workers
        return self._pool

    def discard(self) -> None:
        """Forget a broken pool (its processes are gone or going)."""
        if self._pool is not None:  # its workers are dead or killed: joining them is quick
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._size = None, 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._size = None, 0


_KEPT: contextvars.ContextVar[WorkerPool | None] = contextvars.ContextVar(
    "adaptkit_worker_pool", default=None
)


@contextlib.contextmanager
def keep_workers() -> Iterator[WorkerPool]:
    """Within this block every `local` run_jobs call uses one WorkerPool, closed at the end (a
    study wraps its waves in it). Nested blocks share the outer pool."""
    outer = _KEPT.get()
    if outer is not None:
        yield outer
        return
    pool = WorkerPool()
    token = _KEPT.set(pool)
    try:
        yield pool
    finally:
        _KEPT.reset(token)
        pool.close()


def _run_local(
    jobs: Sequence[Job],
    claims: Path,
    workers: int,
    lease_s: float,
    record: Callable[[_Outcome], None],
) -> None:
    """Jobs on spawned worker processes (the kept pool within `keep_workers`, else one for
    this call), all submitted at once so a free worker takes the next job at once. A worker
    that dies breaks Python's pool: the jobs it and its siblings were running are reported
    failed (their claims are stale, so a rerun runs them again) and the jobs not started yet go
    on on a fresh pool."""
    kept = _KEPT.get()
    holder = kept if kept is not None else WorkerPool()
    threads = max(j.threads for j in jobs)
    pending = list(jobs)
    try:
        while pending:
            broken: list[Job] = []
            pool = holder.get(workers, threads)
            futures: dict[Future, Job] = {
                pool.submit(run_one, j, claims, lease_s): j for j in pending
            }
            pending = []
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = futures.pop(fut)
                    try:
                        record(fut.result())
                    except BrokenProcessPool:
                        broken.append(job)
                    except Exception as exc:  # e.g. a job's kwargs that do not pickle
                        record(_Outcome(job.id, "failed", error=f"{type(exc).__name__}: {exc}"))
            if broken:
                holder.discard()
            for job in broken:
                owner = read_claim(_claim_path(claims, job.id))
                if job.done.exists():
                    record(_Outcome(job.id, "ran"))
                elif owner is None:  # never started: run it on the next pool
                    pending.append(job)
                elif claim_is_stale(_claim_path(claims, job.id), lease_s):
                    record(_Outcome(job.id, "failed", error=_died(owner)))
                else:
                    record(_Outcome(job.id, "busy"))
    finally:
        if kept is None:
            holder.close()


PARENT_POLL_S = 0.5  # how often a worker checks that the process that started it is alive


def _worker_init(threads: int, parent: int) -> None:
    """In each worker, before it imports torch: its OpenMP pool sized for the jobs, not the
    machine; and a watchdog that ends the worker (mid-job too) once its parent is gone, so a
    killed `study` leaves no workers behind (the job's claim is then stale: a rerun runs it)."""
    os.environ.update({k: str(threads) for k in _THREAD_VARS})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="adaptkit-parent-watch", daemon=True).start()


def _died(owner: dict[str, Any]) -> str:
    return (
        f"its worker process (pid {owner.get('pid')}) died mid-job (killed, or out of memory); "
        "a rerun runs it again"
    )


RAY_CONNECT_S = 5.0  # a Ray head that does not accept a connection in this long is not there


def _check_reachable(address: str) -> None:
    """An explicit HOST:PORT (or ray://HOST:PORT) must accept a TCP connection within
    RAY_CONNECT_S: `ray.init` itself retries a dead address for minutes, printing warnings."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # "auto" and addresses without a port are Ray's own to resolve
    host = host.strip("[]")  # [::1]:6379
    try:
        with socket.create_connection((host, int(port)), timeout=RAY_CONNECT_S):
            pass
    except (OSError, ValueError, OverflowError) as exc:
        why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
        raise AdaptkitError(
            f"--ray {address}: no Ray cluster answers there ({why} within "
            f"{RAY_CONNECT_S:g} s); start one with `ray start --head` or give its address"
        ) from None


def _run_ray(
    jobs: Sequence[Job],
    claims: Path,
    address: str,
    lease_s: float,
    record: Callable[[_Outcome], None],
) -> None:
    """Each job a Ray task declaring its CPUs and GPUs; no task retries (a rerun decides)."""
    _check_reachable(address)  # before Ray's import: a dead address fails in seconds
    try:
        import ray
    except ImportError:
        raise AdaptkitError("the ray executor needs Ray: pip install 'adaptkit[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdaptkitError(f"--ray {address}: no Ray cluster to join ({first})") from None
    try:
        _ray_tasks(ray, jobs, claims, lease_s, record)
    finally:
        if started:
            ray.shutdown()


def _ray_tasks(
    ray: Any,
    jobs: Sequence[Job],
    claims: Path,
    lease_s: float,
    record: Callable[[_Outcome], None],
) -> None:
    remote = ray.remote(max_retries=0)(run_one)
    refs = {
        remote.options(num_cpus=j.cpus, num_gpus=j.gpus).remote(j, claims, lease_s): j for j in jobs
    }
    while refs:
        finished, _ = ray.wait(list(refs), num_returns=1)
        for ref in finished:
            job = refs.pop(ref)
            try:
                record(ray.get(ref))
            except Exception as exc:  # the task's worker died, or Ray could not run it
                owner = read_claim(_claim_path(claims, job.id)) or {}
                error = _died(owner) if owner else f"{type(exc).__name__}: {exc}".splitlines()[0]
                record(_Outcome(job.id, "failed", error=error))
