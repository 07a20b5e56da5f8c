"""The official Realtime client's own log lines, brought under liveparams' account of the connection.

While a server is down the client logs ``ERROR Connection attempt failed`` and
``ERROR Connection failed permanently after 1 attempts`` on every reconnection
attempt (every 1-2 s with the agent's rebuilds), which people read as fatal. The
agent and ``liveparams watch`` already say it once per outage (``Realtime push is
down``, ``disconnected, retrying``) and once when it is back. So the client's records
are demoted to DEBUG: they still show when someone debugs the ``realtime`` logger,
and never otherwise.
"""

from __future__ import annotations

import logging

__all__ = ["quiet_client_logs"]

CLIENT_LOGGER = "realtime"


class _DemoteToDebug(logging.Filter):
    """Rewrites a record to DEBUG, and lets it through only where DEBUG is enabled for its logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FILTER = _DemoteToDebug()


def quiet_client_logs() -> None:
    """Install the demotion on every logger of the client (idempotent; call once its modules are imported).

    A filter on a logger only sees records logged on that very logger, not its children's,
    so it goes on each of the client's module loggers.
    """
    import realtime  # noqa: F401  (its modules create their loggers on import)

    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == CLIENT_LOGGER]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
