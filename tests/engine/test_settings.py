"""Engine settings: defaults, validation naming the key, unknown keys, migrations, atomic save."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import settings as S


def test_defaults_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    assert S.load(path) == S.EngineSettings()
    changed = S.EngineSettings().replace(sample_every_s=0.5, model="test-tiny")
    S.save(changed, path)
    assert S.load(path) == changed
    assert not list(tmp_path.glob(".*tmp"))  # the temp file of the atomic write is gone


def test_environment_overrides_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENEFIND_MODEL", "fake:color")
    assert S.load(tmp_path / "none.toml").model == "fake:color"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sample_every_s = 0\n", "sample_every_s"),
        ("batch_size = 'many'\n", "batch_size must be a int"),
        ("detect_cuts = 1\n", "detect_cuts must be true or false"),
        ("device = 'tpu'\n", "device"),
        ("frobnicate = 1\n", "unknown setting(s) frobnicate"),
        ("schema_version = 99\n", "newer Scenefind"),
        ("model = \n", "not a valid TOML file"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(S.SettingsError) as exc:
        S.load(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_migrations_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(
        S.MIGRATIONS, 1, lambda d: {**{k: v for k, v in d.items() if k != "fps"}, "sample_every_s": 1 / d["fps"]}
    )
    migrated = S.from_mapping({"schema_version": 1, "fps": 2})
    assert migrated.sample_every_s == 0.5 and migrated.schema_version == 2


def test_pooling_settings_and_their_environment_overrides(tmp_path, monkeypatch) -> None:
    assert (S.EngineSettings().pooling, S.EngineSettings().head_windows) == ("auto", "resample")
    with pytest.raises(S.SettingsError, match="pooling"):
        S.from_mapping({"pooling": "max"}, "x.toml")
    with pytest.raises(S.SettingsError, match="head_windows"):
        S.from_mapping({"head_windows": "crop"}, "x.toml")
    monkeypatch.setenv("SCENEFIND_POOLING", "mean")
    monkeypatch.setenv("SCENEFIND_HEAD_WINDOWS", "pad")
    settings = S.load(tmp_path / "settings.toml")
    assert (settings.pooling, settings.head_windows) == ("mean", "pad")
    monkeypatch.setenv("SCENEFIND_POOLING", "median")
    with pytest.raises(S.SettingsError, match="SCENEFIND_POOLING"):
        S.load(tmp_path / "settings.toml")
