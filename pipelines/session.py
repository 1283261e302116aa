"""The SparkSession, built once per command at the edge, from config.

``spark.master`` defaults to ``local[*]``; any master URL (``spark://host:7077``,
``yarn``, ``k8s://...``) or a Spark Connect ``sc://`` URL works the same way, so the
pipelines run unchanged on a cluster.

Under ``local[...]`` the whole job runs in one JVM whose heap is ``spark.driver.memory``;
Spark's own default of 1g is too small for a real training set, so unless config (or the
Spark environment) sets it, the driver gets ``spark.driver_memory_fraction`` of this
machine's memory (:func:`driver_memory`). :func:`describe` says what was chosen and
:func:`explain_failure` turns an out-of-memory or a dead JVM into one line naming the
setting to raise.
"""

from __future__ import annotations

import atexit
import os
import re
import shlex
import shutil
import signal
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

MiB = 1024**2
GiB = 1024**3
MIN_DRIVER_MEMORY = 1 * GiB
"""Never below Spark's own default."""
PYTHON_RESERVE = 2 * GiB
"""Left to the Python side (pandas, MLflow, the Python workers) whatever the fraction."""
DEFAULT_FRACTION = 0.5
SPARK_DEFAULT_DRIVER_MEMORY = "1g"
SPARK_OOM_EXIT_CODE = 52
"""``SparkExitCode.OOM``: the JVM exits with it when a task thread hits OutOfMemoryError."""


def java_available() -> bool:
    """True when a ``java`` binary is reachable (Spark needs Java 17)."""
    return (
        bool(os.environ.get("JAVA_HOME") and os.path.exists(os.path.join(os.environ["JAVA_HOME"], "bin", "java")))
        or shutil.which("java") is not None
    )


def build_session(
    master: str = "local[*]", app_name: str = "promote", config: Mapping[str, Any] | None = None
) -> "SparkSession":
    """Create (or return the running) SparkSession.

    Args:
        master: a Spark master URL, or ``sc://host:port`` for Spark Connect.
        app_name: shown in the Spark UI and cluster manager.
        config: extra ``spark.*`` settings, applied before the session starts. JVM settings
            such as ``spark.driver.memory`` only take effect if no session is running yet.

    Raises:
        PromoteError: when Java is missing, with the one-line fix.
    """
    from promoter.errors import PromoteError

    if not java_available():
        raise PromoteError(
            "java not found: Spark needs Java 17 (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)"
        )
    os.environ.setdefault("PYSPARK_PYTHON", _python())
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", _python())
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master.startswith("sc://"):
        builder = builder.remote(master)
    else:
        builder = builder.master(master)
    defaults = {"spark.ui.showConsoleProgress": "false", "spark.sql.session.timeZone": "UTC"}
    for key, value in {**defaults, **dict(config or {})}.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    spark = builder.getOrCreate()
    if master.startswith("sc://"):
        # Spark ML models over Connect free their server-side copy in __del__ with an RPC; left
        # to interpreter shutdown, that RPC waits forever on a channel whose threads are gone (the
        # command has finished, the process never exits). Stopping the session first makes them
        # no-ops.
        atexit.register(_stop_quietly, spark)
    else:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def _stop_quietly(spark: "SparkSession") -> None:
    import gc

    gc.collect()  # models still referenced only by cycles release their server copy now, while it answers
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 - on the way out; the server may be gone
        pass


def from_settings(spark_settings: Any) -> "SparkSession":
    """Build the session from ``settings.project.spark`` (master, app_name, config).

    Under a ``local[...]`` master without an explicit ``spark.driver.memory`` the driver gets
    the machine-sized default of :func:`driver_memory`; :func:`describe` says which.
    """
    return build_session(spark_settings.master, spark_settings.app_name, session_config(spark_settings))


def session_config(spark_settings: Any) -> dict[str, Any]:
    """The ``spark.*`` settings the session is built with: config plus the chosen driver memory."""
    config = dict(getattr(spark_settings, "config", None) or {})
    memory = driver_memory(spark_settings)
    if memory.source == "machine":
        config["spark.driver.memory"] = memory.value
    return config


# --------------------------------------------------------------------------- driver memory


@dataclass(frozen=True)
class DriverMemory:
    """The driver heap a session gets, and why.

    ``source`` is ``"config"`` (``spark.driver.memory`` in project.yml), ``"machine"``
    (``fraction`` of the machine's memory, local masters only), ``"environment"`` (Spark's own
    PYSPARK_SUBMIT_ARGS, spark-defaults.conf or SPARK_DRIVER_MEMORY), ``"spark-default"``
    (nothing set: Spark's 1g) or ``"server"`` (Spark Connect: the server's JVM, not set from
    here; ``value`` is None). ``why`` is the human half of :meth:`label`.
    """

    value: str | None
    source: str
    why: str
    fraction: float | None = None

    def label(self) -> str:
        """``11g (50% of 23.5 GiB)``, ``8g (spark.driver.memory in config)``, ..."""
        return self.why if self.value is None else f"{self.value} ({self.why})"


def is_local(master: str) -> bool:
    """``local``, ``local[4]``, ``local[*]``, ``local[4,2]``: the whole job in this machine's one JVM."""
    return re.fullmatch(r"local(\[[^\]]*\])?", master.strip()) is not None


def driver_memory(spark_settings: Any) -> DriverMemory:
    """The driver memory a session from these settings gets.

    An explicit ``spark.driver.memory`` in config always wins, then one from Spark's own
    environment. Otherwise, for a ``local[...]`` master only, a share of the machine (see
    :func:`default_driver_memory`); a cluster or ``sc://`` master gets nothing invented.
    """
    master = str(getattr(spark_settings, "master", "local[*]"))
    config = getattr(spark_settings, "config", None) or {}
    if master.startswith("sc://"):
        return DriverMemory(None, "server", "set on the Spark Connect server")
    if "spark.driver.memory" in config:
        return DriverMemory(str(config["spark.driver.memory"]), "config", "spark.driver.memory in config")
    found = _memory_from_environment()
    if found is not None:
        return DriverMemory(found[0], "environment", f"from {found[1]}")
    total = machine_memory() if is_local(master) else None
    if total is None:  # a cluster's driver, or no way to tell: Spark's own default
        return DriverMemory(SPARK_DEFAULT_DRIVER_MEMORY, "spark-default", "Spark's default")
    fraction = float(getattr(spark_settings, "driver_memory_fraction", DEFAULT_FRACTION))
    value, why = _machine_share(total, fraction)
    return DriverMemory(value, "machine", why, fraction)


def default_driver_memory(total_bytes: int, fraction: float = DEFAULT_FRACTION) -> str:
    """``fraction`` of ``total_bytes``, leaving ``PYTHON_RESERVE`` and at least 1g, as a JVM size.

    Whole gibibytes from 2g up (rounded down), mebibytes below: 24 GiB x 0.5 -> ``12g``,
    3 GiB -> ``1g`` (3 GiB less 2 GiB), 3.5 GiB -> ``1536m``, 2 GiB -> ``1g`` (the minimum).
    """
    return _machine_share(total_bytes, fraction)[0]


def _machine_share(total: int, fraction: float) -> tuple[str, str]:
    share, why = int(total * fraction), f"{fraction:.0%} of {_gib(total)}"
    if share > total - PYTHON_RESERVE:
        share, why = total - PYTHON_RESERVE, f"{_gib(total)} less {_gib(PYTHON_RESERVE)} for Python"
    if share < MIN_DRIVER_MEMORY:
        share, why = MIN_DRIVER_MEMORY, f"the 1g minimum; the machine has {_gib(total)}"
    return (f"{share // GiB}g" if share >= 2 * GiB or share % GiB == 0 else f"{share // MiB}m"), why


def machine_memory() -> int | None:
    """Physical memory in bytes (``/proc/meminfo`` MemTotal, else ``os.sysconf``), capped by a
    cgroup memory limit when the process runs in a container that has one."""
    total: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        total = None
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    limit = _cgroup_limit()
    return min(total, limit) if limit else total


def describe(spark_settings: Any) -> str:
    """One line for "starting Spark (...)": ``local[*], driver memory 11g (50% of 23.5 GiB)``.

    Describes what :func:`from_settings` asks for; a session already running in this process
    keeps the memory it started with.
    """
    master = str(getattr(spark_settings, "master", "local[*]"))
    memory = driver_memory(spark_settings)
    return f"{master}, driver memory {memory.label()}"


def _memory_from_environment() -> tuple[str, str] | None:
    """A driver memory Spark would take from its own environment, in Spark's order of precedence."""
    try:
        args = shlex.split(os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
    except ValueError:
        args = []
    for i, arg in enumerate(args):
        if arg == "--driver-memory" and i + 1 < len(args):
            return args[i + 1], "PYSPARK_SUBMIT_ARGS"
        if arg.startswith("--driver-memory="):
            return arg.split("=", 1)[1], "PYSPARK_SUBMIT_ARGS"
        if arg == "--conf" and i + 1 < len(args) and args[i + 1].startswith("spark.driver.memory="):
            return args[i + 1].split("=", 1)[1], "PYSPARK_SUBMIT_ARGS"
    conf_dir = os.environ.get("SPARK_CONF_DIR") or (
        os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None
    )
    if conf_dir:
        try:
            for line in Path(conf_dir, "spark-defaults.conf").read_text().splitlines():
                parts = re.split(r"\s*[=:\s]\s*", line.strip(), maxsplit=1)  # a Java properties line
                if len(parts) == 2 and parts[0] == "spark.driver.memory" and parts[1]:
                    return parts[1].strip(), "spark-defaults.conf"
        except OSError:
            pass
    for name in ("SPARK_DRIVER_MEMORY", "SPARK_MEM"):
        if os.environ.get(name):
            return os.environ[name], name
    return None


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or a huge number: no limit
            return int(text)
    return None


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


# --------------------------------------------------------------------------- failures

_OOM = re.compile(
    r"(?:java\.lang\.|org\.apache\.spark\.memory\.Spark)OutOfMemoryError(?::[^\r\n]*)?"
    r"|Java heap space|GC overhead limit exceeded"
)
_OOM_ON_EXECUTOR = re.compile(
    r"executor (\S+)\): (?:java\.lang\.|org\.apache\.spark\.memory\.Spark)"
    r"OutOfMemoryError"
)
_DEAD = re.compile(
    r"Answer from Java side is empty|Error while (?:sending|receiving)"
    r"|An error occurred while trying to connect to the Java server"
    r"|SparkContext was shut down|SparkContext has been shutdown"
    r"|Cannot call methods on a stopped SparkContext"
)
_NETWORK = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError)


def explain_failure(exc: BaseException, spark_settings: Any = None) -> str | None:
    """One sentence for a Spark failure caused by memory, or None for anything else.

    Recognises a Java ``OutOfMemoryError`` anywhere in the exception chain (a Py4JJavaError's
    Java stack trace, a captured PySpark exception, a message) and a JVM that died mid-step
    (py4j cannot reach it: Py4JNetworkError, a connection refused/reset or broken pipe raised
    from py4j, "Answer from Java side is empty", a SparkContext shut down under the step). A
    JVM that exited with Spark's out-of-memory code (52) counts as out of memory. The sentence
    names what happened, the driver memory in effect (from ``spark_settings``, the
    ``settings.project.spark`` the session was built from) and the setting to raise; the
    caller prefixes the step.
    """
    oom: str | None = None
    executor: str | None = None
    dead: str | None = None
    for err in _chain(exc):
        texts, lost = _read(err)
        if lost is not None or _unreachable(err):
            dead = dead or lost or _short(f"{type(err).__name__}: {_first_line(texts)}")
        for text in texts:
            m = _OOM.search(text)
            if m and oom is None:
                found = m.group(0)
                oom = _short(found if "OutOfMemoryError" in found else f"java.lang.OutOfMemoryError: {found}")
            on = _OOM_ON_EXECUTOR.search(text)
            if on and on.group(1) != "driver":
                executor = on.group(1)
            m = _DEAD.search(text)
            if m and dead is None:
                dead = m.group(0)
    if oom is None and dead is None:
        # a Java error whose text could not be read (the JVM is going down under it): the JVM's
        # exit code, if it exits now, says whether memory killed it
        if not any(_from_java(err) for err in _chain(exc)):
            return None
        code = _jvm_exit_code(wait=3.0)
        if code is None:
            return None
        dead = _short(f"{type(exc).__name__}: {_first_line(_read(exc)[0])}")

    # a JVM that cannot be reached, or whose SparkContext shut down under the step, is usually
    # exiting: give it a moment to report how (52 is an OutOfMemoryError in a task)
    exit_code = _jvm_exit_code(wait=3.0 if dead is not None else 0.0)
    if oom is None and exit_code == SPARK_OOM_EXIT_CODE:
        oom = f"the JVM exited with code {SPARK_OOM_EXIT_CODE}, Spark's code for java.lang.OutOfMemoryError"
    memory = driver_memory(spark_settings if spark_settings is not None else _default_settings())
    if oom is not None:
        if executor is not None:
            return (
                f"Spark ran out of memory ({oom}) on executor {executor}; raise spark.executor.memory "
                "under spark.config in project.yml"
            )
        return f"Spark ran out of memory ({oom}) {_with(memory)}; {_advice(memory)}"
    if exit_code is not None:
        dead = f"{_exit_status(exit_code)}; {dead}"
    return (
        f"the Spark JVM died ({dead}) {_with(memory)}; the usual cause is memory: "
        f"{_advice(memory)}, and see the JVM's last lines on stderr"
    )


def _with(memory: DriverMemory) -> str:
    if memory.source == "server":
        return "on the Spark Connect server"
    if memory.source == "config":
        return f"with spark.driver.memory={memory.value}"
    return f"with spark.driver.memory={memory.label()}"


def _advice(memory: DriverMemory) -> str:
    if memory.source == "server":
        return "raise the server's spark.driver.memory (or spark.executor.memory)"
    if memory.source == "machine":
        return (
            f"raise spark.driver_memory_fraction (now {memory.fraction:g}) or set spark.driver.memory "
            "under spark.config in project.yml"
        )
    return "raise spark.driver.memory under spark.config in project.yml"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and PySpark's captured causes; each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 50:
        err = todo.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        for nxt in (err.__cause__, err.__context__, getattr(err, "_cause", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _read(err: BaseException) -> tuple[list[str], str | None]:
    """What an exception says, and, if reading it needed the JVM and the JVM did not answer,
    how it failed (``str`` of a Py4JJavaError asks the JVM for the Java stack trace)."""
    texts = [arg for arg in err.args if isinstance(arg, str)]
    texts += [v for v in (getattr(err, a, None) for a in ("errmsg", "_desc", "_stackTrace")) if isinstance(v, str)]
    try:
        texts.append(str(err))
    except Exception as failed:  # noqa: BLE001 - describing a failure must never fail
        if isinstance(failed, _NETWORK) or _is_py4j_error(failed):
            return texts, _short(f"{type(failed).__name__}: {failed}")
    return texts, None


def _is_py4j_error(err: BaseException) -> bool:
    try:
        from py4j.protocol import Py4JError
    except ImportError:  # pragma: no cover - pyspark is a dependency
        return False
    return isinstance(err, Py4JError)


def _from_java(err: BaseException) -> bool:
    """True for an error py4j raised for a Java call (``Py4JJavaError`` and its kin)."""
    return any(cls.__module__.startswith("py4j") for cls in type(err).__mro__)


def _unreachable(err: BaseException) -> bool:
    try:
        from py4j.protocol import Py4JNetworkError
    except ImportError:  # pragma: no cover
        return False
    if isinstance(err, Py4JNetworkError):
        return True
    marker = f"{os.sep}py4j{os.sep}"
    return isinstance(err, _NETWORK) and any(
        marker in frame.filename for frame in traceback.extract_tb(err.__traceback__)
    )


def _jvm_exit_code(wait: float) -> int | None:
    """The exit code of this process's Spark JVM once it has exited (waiting up to ``wait`` s)."""
    import subprocess

    from pyspark import SparkContext

    proc = getattr(getattr(SparkContext, "_gateway", None), "proc", None)
    if proc is None:
        return None
    try:
        return proc.wait(timeout=wait) if wait else proc.poll()
    except (subprocess.TimeoutExpired, OSError):
        return None


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"the JVM exited with code {code}"


def _first_line(texts: list[str]) -> str:
    return next((t.strip().splitlines()[0] for t in texts if t.strip()), "")


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default_settings() -> Any:
    from promoter.config import SparkSettings

    return SparkSettings()


def _python() -> str:
    import sys

    return sys.executable
