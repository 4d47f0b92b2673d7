"""Configuration: file discovery, precedence, and errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattledger.config import default_data_dir, load_settings
from wattledger.errors import ConfigError


def test_defaults_put_duckdb_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTLEDGER_DATA_DIR", str(tmp_path / "d"))
    s = load_settings()
    assert s.data_dir == tmp_path / "d"
    assert s.url == f"duckdb:///{tmp_path / 'd' / 'wattledger.duckdb'}"
    assert s.ingest.port == 4318
    assert s.log_level == "INFO"


def test_data_dir_follows_xdg_when_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATTLEDGER_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "wattledger"


def test_file_in_working_directory_is_read(tmp_path: Path) -> None:
    Path("wattledger.toml").write_text(
        'database_url = "duckdb:///x.duckdb"\n[ingest]\nport = 9999\n'
    )
    s = load_settings()
    assert s.url == "duckdb:///x.duckdb"
    assert s.ingest.port == 9999


def test_precedence_flag_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'database_url = "duckdb:///file.duckdb"\n[ingest]\nport = 1111\nhost = "0.0.0.0"\n'
    )
    monkeypatch.setenv("WATTLEDGER_CONFIG", str(cfg))
    monkeypatch.setenv("WATTLEDGER_DATABASE_URL", "duckdb:///env.duckdb")
    monkeypatch.setenv("WATTLEDGER_INGEST__PORT", "2222")
    s = load_settings()
    assert s.url == "duckdb:///env.duckdb"
    assert s.ingest.port == 2222
    assert s.ingest.host == "0.0.0.0"  # from the file, not overridden
    s = load_settings(database_url="duckdb:///flag.duckdb")
    assert s.url == "duckdb:///flag.duckdb"


def test_explicit_config_wins_over_env_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('log_level = "DEBUG"\n')
    b.write_text('log_level = "ERROR"\n')
    monkeypatch.setenv("WATTLEDGER_CONFIG", str(b))
    assert load_settings(a).log_level == "DEBUG"
    assert load_settings().log_level == "ERROR"


def test_malformed_file_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[ingest\nport = 1\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert str(cfg) in e.value.message
    assert "not valid TOML" in e.value.message
    assert "line 1" in e.value.message


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[ingest]\nprot = 4318\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "'ingest.prot'" in e.value.message
    assert str(cfg) in e.value.message
    assert e.value.hint and "spelling" in e.value.hint


def test_unknown_top_level_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('databse_url = "duckdb:///x"\n')
    with pytest.raises(ConfigError, match="Unknown config key 'databse_url'"):
        load_settings(cfg)


def test_bad_value_in_file_names_key_value_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingest]\nport = "fast"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "'ingest.port'" in e.value.message
    assert "'fast'" in e.value.message
    assert str(cfg) in e.value.message


def test_bad_value_in_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTLEDGER_INGEST__PORT", "99999")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "WATTLEDGER_INGEST__PORT" in e.value.message
    assert "'99999'" in e.value.message


def test_bad_log_level_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTLEDGER_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="log_level"):
        load_settings()


def test_missing_explicit_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="--config"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("WATTLEDGER_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"\$WATTLEDGER_CONFIG"):
        load_settings()


@pytest.mark.parametrize("zone", ["x" * 300, "Europe/", "../etc/passwd", "Mars/Olympus"])
def test_a_time_zone_that_is_no_zone_is_a_config_error(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by fuzzing: a name too long for the file system raised OSError, not ConfigError."""
    monkeypatch.setenv("WATTLEDGER_REPORT__TIMEZONE", zone)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "unknown time zone" in e.value.message
