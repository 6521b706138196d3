"""opencode.json kept fresh while the proxy runs: re-read when it changes, the last good one kept when it breaks."""

from __future__ import annotations

import logging
import os

from . import keys, opencode_config, resolution, route_table

logger = logging.getLogger(__name__)


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is rewritten, replaced or deleted."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ConfigWatch:
    """The current config. A broken file at start-up raises ConfigError; later, it only logs and keeps the old."""

    def __init__(self, path: str, settings: resolution.Settings) -> None:
        self.path = path
        self.settings = settings
        self.stamp = _stamp(path)
        self.config = opencode_config.load_config(path)
        self.error: str | None = None
        self.targets: dict[str, resolution.Target] = {}

    def resolve(self, model: str) -> resolution.Target:
        """The target for a model name, remembered until the config changes (resolution asks litellm)."""
        target = self.targets.get(model)
        if target is None:
            target = resolution.resolve(self.config, model, self.settings)
            if target.api_key is None:  # once per name and config: the flow says it each time
                logger.info(f"{model}: {keys.shown(None, target.api_base)}; set {target.key_hint}.")
            if len(self.targets) > 1000:  # names not in the file are the client's to choose: stay bounded
                self.targets.clear()
            self.targets[model] = target
        return target

    def refresh(self) -> bool:
        """Reload if the file changed since the last look; True when a new config took effect."""
        stamp = _stamp(self.path)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            self.config = opencode_config.load_config(self.path)
        except opencode_config.ConfigError as e:
            self.error = str(e)
            logger.warning(f"Keeping the last good config, because {self.path} cannot be used now: {e}")
            return False
        self.error = None
        self.targets = {}
        logger.info(f"Reloaded {self.path}: {len(self.config.model_names())} models.")
        self.log_routes()
        return True

    def log_routes(self) -> None:
        """The route table (route_table.py): INFO, and a WARNING per missing or placeholder key."""
        for level, text in route_table.lines(self.config, self.settings):
            logger.log(level, text)
