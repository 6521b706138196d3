"""addon/config/config_watch.py: opencode.json re-read when it changes; the last good one kept when it breaks."""

import json
import logging
import os

import pytest

from addon.config import opencode_config, resolution
from addon.config.config_watch import ConfigWatch

SETTINGS = resolution.Settings(api_base="http://upstream.test/v1beta/openai/", api_key="AIza-test", proxy_port=8000)


def config(aliases: dict[str, str]) -> str:
    return json.dumps(
        {
            "provider": {
                "local": {
                    "options": {"baseURL": "http://127.0.0.1:8000/v1", "proxy": {"models": aliases}},
                    "models": {name: {} for name in aliases},
                }
            }
        }
    )


def rewrite(path, text: str) -> None:
    """Write the file so that its stamp surely changes (size, or mtime moved forward)."""
    before = os.stat(path).st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def names(watch: ConfigWatch) -> list[str]:
    return [m["id"] for m in watch.config.model_names()]


@pytest.fixture
def path(tmp_path):
    file = tmp_path / "opencode.json"
    file.write_text(config({"local-model": "gemini-2.5-flash"}))
    return file


def test_a_broken_file_at_start_up_raises(tmp_path):
    broken = tmp_path / "opencode.json"
    broken.write_text('{"provider": [1,')
    with pytest.raises(opencode_config.ConfigError, match="is not valid JSON at line 1"):
        ConfigWatch(str(broken), SETTINGS)
    with pytest.raises(opencode_config.ConfigError, match="does not exist"):
        ConfigWatch(str(tmp_path / "missing.json"), SETTINGS)


def test_an_unchanged_file_is_not_read_again(path, monkeypatch):
    watch = ConfigWatch(str(path), SETTINGS)
    monkeypatch.setattr(opencode_config, "load_config", lambda *a: pytest.fail("read again"))
    assert watch.refresh() is False


def test_a_changed_file_takes_effect_and_is_logged(path, caplog):
    watch = ConfigWatch(str(path), SETTINGS)
    assert names(watch) == ["local-model"]
    rewrite(path, config({"local-model": "gemini-2.5-flash", "local-b": "gemini-2.0-flash"}))
    with caplog.at_level(logging.INFO):
        assert watch.refresh() is True
    assert names(watch) == ["local-model", "local-b"]
    assert f"Reloaded {path}: 2 models." in caplog.text
    assert watch.refresh() is False  # once


def test_a_broken_edit_keeps_the_last_good_config_and_says_why(path, caplog):
    watch = ConfigWatch(str(path), SETTINGS)
    rewrite(path, '{\n  "provider": {\n    "local": [1,\n  }\n')
    with caplog.at_level(logging.INFO):
        assert watch.refresh() is False
    assert names(watch) == ["local-model"]  # still serving the last good one
    assert watch.error == f"Config file {path} is not valid JSON at line 4, column 3: Expecting ',' delimiter."
    [record] = [r for r in caplog.records if "Keeping the last good config" in r.message]
    assert record.levelno == logging.WARNING  # not ERROR: errorcheck would stop mitmdump at start-up
    assert record.message == (
        f"Keeping the last good config, because {path} cannot be used now: "
        f"Config file {path} is not valid JSON at line 4, column 3: Expecting ',' delimiter."
    )
    caplog.clear()
    assert watch.refresh() is False and not caplog.records  # said once, not on every request

    rewrite(path, config({"fixed-model": "gemini-2.5-pro"}))
    assert watch.refresh() is True
    assert names(watch) == ["fixed-model"] and watch.error is None


def test_a_deleted_file_keeps_the_last_good_config(path, caplog):
    watch = ConfigWatch(str(path), SETTINGS)
    path.unlink()
    with caplog.at_level(logging.WARNING):
        assert watch.refresh() is False
    assert names(watch) == ["local-model"]
    assert "does not exist" in watch.error and "Keeping the last good config" in caplog.text


def test_a_replaced_file_is_noticed_even_with_the_same_size_and_time(path):
    """Editors save by writing a new file and renaming it over the old one: a new inode."""
    watch = ConfigWatch(str(path), SETTINGS)
    stat = os.stat(path)
    new = path.with_name("new.json")
    new.write_text(config({"local-mode2": "gemini-2.5-flash"}))  # the same length as "local-model"
    os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(new).st_size == stat.st_size
    new.replace(path)
    assert watch.refresh() is True and names(watch) == ["local-mode2"]


def test_resolved_targets_are_remembered_until_the_config_changes(path):
    watch = ConfigWatch(str(path), SETTINGS)
    first = watch.resolve("local-model")
    assert first.upstream_model == "gemini-2.5-flash"
    assert watch.resolve("local-model") is first  # remembered: litellm is not asked twice
    rewrite(path, config({"local-model": "gemini-2.5-pro"}))
    assert watch.refresh() is True
    assert watch.resolve("local-model").upstream_model == "gemini-2.5-pro"


def test_a_broken_edit_keeps_the_remembered_targets(path):
    watch = ConfigWatch(str(path), SETTINGS)
    first = watch.resolve("local-model")
    rewrite(path, "{")
    assert watch.refresh() is False
    assert watch.resolve("local-model") is first


def test_the_remembered_targets_stay_bounded(path):
    watch = ConfigWatch(str(path), SETTINGS)
    for n in range(1500):
        watch.resolve(f"client-chosen-{n}")
    assert len(watch.targets) <= 1001
    assert watch.resolve("client-chosen-1499").upstream_model == "client-chosen-1499"
