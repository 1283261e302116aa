"""The SparkSession, built once per command at the edge, from config.

``spark.master`` defaults to ``local[*]``; any master URL (``spark://host:7077``,
``yarn``, ``k8s://...``) or a Spark Connect ``sc://`` URL works the same way, so the
pipelines run unchanged on a cluster.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession


def java_available() -> bool:
    """True when a ``java`` binary is reachable (Spark needs Java 17)."""
    return bool(os.environ.get("JAVA_HOME") and os.path.exists(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))) \
        or shutil.which("java") is not None


def build_session(master: str = "local[*]", app_name: str = "promote",
                  config: Mapping[str, Any] | None = None) -> "SparkSession":
    """Create (or return the running) SparkSession.

    Args:
        master: a Spark master URL, or ``sc://host:port`` for Spark Connect.
        app_name: shown in the Spark UI and cluster manager.
        config: extra ``spark.*`` settings, applied before the session starts.

    Raises:
        PromoteError: when Java is missing, with the one-line fix.
    """
    from promoter.errors import PromoteError

    if not java_available():
        raise PromoteError("java not found: Spark needs Java 17 "
                           "(Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)")
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
    spark.sparkContext.setLogLevel("ERROR") if not master.startswith("sc://") else None
    return spark


def from_settings(spark_settings: Any) -> "SparkSession":
    """Build the session from ``settings.project.spark`` (master, app_name, config)."""
    return build_session(spark_settings.master, spark_settings.app_name, spark_settings.config)


def _python() -> str:
    import sys

    return sys.executable
