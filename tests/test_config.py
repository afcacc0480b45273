"""Configuration: defaults, files, environment, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciportal.config import SETTINGS, describe_settings, load_config
from sciportal.errors import ConfigError


def test_zero_configuration(tmp_path: Path) -> None:
    cfg = load_config(home=tmp_path, environ={})
    assert cfg["server.host"] == "127.0.0.1"
    assert cfg["server.port"] == 8080
    assert cfg["query.engine"] == "duckdb"
    assert cfg.home == tmp_path.resolve()
    assert cfg.metadata_db.parent == tmp_path.resolve() / "state"


def test_default_home_is_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).home == (tmp_path / "var").resolve()


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[server]\nport = 9000\ntitle = "LIneA"\n[query]\ndefault_maxrec = 50\n')
    cfg = load_config(f, tmp_path, environ={"SCIPORTAL_SERVER_PORT": "9100"})
    assert cfg["server.port"] == 9100
    assert cfg["server.title"] == "LIneA"
    assert cfg["query.default_maxrec"] == 50
    cfg = load_config(f, tmp_path, environ={}, overrides={"server.port": "7"})
    assert cfg["server.port"] == 7


def test_home_toml_is_read(tmp_path: Path) -> None:
    (tmp_path / "sciportal.toml").write_text("[server]\nport = 9999\n")
    assert load_config(home=tmp_path, environ={})["server.port"] == 9999


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nprot = 1\n", "server.prot"),
        ("[serverx]\nport = 1\n", "serverx.port"),
        ('[server]\nport = "eighty"\n', "server.port"),
        ("[server]\nport = -1\n", "server.port"),
        ('[query]\nengine = "oracle"\n', "query.engine"),
        ("port = 1\n", "port"),
        ("[server\n", "invalid TOML"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, tmp_path, environ={})
    assert fragment in str(err.value)
    assert str(f) in str(err.value)


def test_bad_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SCIPORTAL_SERVER_PROT"):
        load_config(home=tmp_path, environ={"SCIPORTAL_SERVER_PROT": "1"})
    with pytest.raises(ConfigError, match="query.threads"):
        load_config(home=tmp_path, environ={"SCIPORTAL_QUERY_THREADS": "0"})
    with pytest.raises(ConfigError, match="demo.rows"):
        load_config(home=tmp_path, environ={"SCIPORTAL_DEMO_ROWS": "1000000000"})


def test_other_tools_variables_are_not_settings(tmp_path: Path) -> None:
    # the set-up script's and the test suite's variables share the prefix
    cfg = load_config(home=tmp_path, environ={"SCIPORTAL_SKIP_APT": "1", "SCIPORTAL_LYONETIA": "x"})
    assert cfg["server.port"] == 8080


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml", tmp_path, environ={})


def test_every_setting_documented() -> None:
    doc = describe_settings()
    for s in SETTINGS:
        assert s.key in doc and s.env in doc
        assert len(s.doc) > 10


def test_every_setting_in_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [s.key for s in SETTINGS if f"`{s.key}`" not in readme]
    assert not missing, f"settings not documented in README.md: {missing}"


def test_readme_table_is_the_settings_description() -> None:
    """The README's table is exactly what `sciportal config` prints: defaults and docs agree."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert describe_settings() in readme
