"""Options: sizes, durations and the validated WriterConfig."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from analytics import AnalyticsError, ConfigError, JSONLWriter, WriterConfig
from analytics._config import parse_duration, parse_size


class TestParseSize:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("100 MiB", 100 * 1024**2),
            ("1 GB", 1_000_000_000),
            ("1KB", 1000),
            ("1 KiB", 1024),
            ("1.5 KiB", 1536),
            ("2 MB", 2_000_000),
            ("3 GiB", 3 * 1024**3),
            ("1 TB", 10**12),
            ("1 TiB", 1024**4),
            ("512", 512),
            ("7 B", 7),
            (4096, 4096),
        ],
    )
    def test_accepts_decimal_and_binary_units(self, text: str | int, expected: int) -> None:
        assert parse_size(text) == expected

    @pytest.mark.parametrize("text", ["10 mb", "1 kb", "1 Mb", "1 mib", "5 bits", "1 M", "1 K"])
    def test_rejects_any_other_unit_naming_the_accepted_ones(self, text: str) -> None:
        with pytest.raises(ValueError, match="KiB") as info:
            parse_size(text)
        assert "unknown size unit" in str(info.value)

    @pytest.mark.parametrize("value", ["abc", "", "MiB", "-1 KiB", "1.5 B", True, None, [1]])
    def test_rejects_non_sizes(self, value: Any) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - each message is checked below
            parse_size(value)


class TestParseDuration:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            (1, 1.0),
            (0.25, 0.25),
            ("500ms", 0.5),
            ("30s", 30.0),
            ("5m", 300.0),
            ("1h", 3600.0),
            ("7d", 604800.0),
            (timedelta(minutes=2), 120.0),
        ],
    )
    def test_accepts_numbers_timedeltas_and_strings(self, value: Any, seconds: float) -> None:
        assert parse_duration(value) == seconds

    @pytest.mark.parametrize("value", ["5 minutes", "1y", "abc", True, float("inf")])
    def test_rejects_anything_else(self, value: Any) -> None:
        with pytest.raises(ValueError, match=r"duration|finite"):
            parse_duration(value)


class TestWriterConfig:
    def test_defaults_are_the_documented_contract(self) -> None:
        c = WriterConfig()
        assert c.max_file_size == 100 * 1024 * 1024
        assert c.max_files == 10
        assert c.compress_old is True
        assert c.buffer_size == 100
        assert c.flush_interval == 1.0
        assert c.fsync == "rotate"
        assert c.on_full == "wait"
        assert c.compress_level == 6
        assert c.compressor == "zlib"
        assert c.filename_prefix == "metrics"

    def test_is_frozen_and_equal_by_value(self) -> None:
        a = WriterConfig(max_file_size="1 MiB")
        assert a == WriterConfig(max_file_size=1024 * 1024)
        with pytest.raises(ValidationError, match="frozen"):
            a.max_files = 3  # type: ignore[misc]

    def test_writer_defaults_match_the_config_defaults(self, tmp_path: Path) -> None:
        assert JSONLWriter(tmp_path).config == WriterConfig(base_path=tmp_path)

    def test_writer_accepts_size_strings(self, tmp_path: Path) -> None:
        assert JSONLWriter(tmp_path, max_file_size="1 GB").config.max_file_size == 10**9
        assert JSONLWriter(tmp_path, max_file_size="64 KiB").config.max_file_size == 65536


class TestWriterOptionErrors:
    @pytest.mark.parametrize(
        ("options", "named"),
        [
            ({"max_file_size": "10 mb"}, "max_file_size"),
            ({"max_file_size": 0}, "max_file_size"),
            ({"max_file_size": -5}, "max_file_size"),
            ({"max_files": 0}, "max_files"),
            ({"buffer_size": 0}, "buffer_size"),
            ({"flush_interval": 0}, "flush_interval"),
            ({"flush_interval": -1.0}, "flush_interval"),
            ({"flush_interval": "soon"}, "flush_interval"),
            ({"compress_level": 10}, "compress_level"),
            ({"compressor": "lz4"}, "compressor"),
            ({"fsync": "sometimes"}, "fsync"),
            ({"max_pending": 0}, "max_pending"),
            ({"on_full": "block"}, "on_full"),
            ({"filename_prefix": "../escape"}, "filename_prefix"),
        ],
    )
    def test_bad_option_raises_config_error_naming_it(
        self, tmp_path: Path, options: dict[str, Any], named: str
    ) -> None:
        with pytest.raises(ConfigError, match=named) as info:
            JSONLWriter(tmp_path, **options)
        assert isinstance(info.value, AnalyticsError)
        assert isinstance(info.value, ValueError)

    def test_isal_without_its_package_names_the_extra(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "isal", None)  # as if not installed
        with pytest.raises(ConfigError, match=r"compressor.*pip install '.*\[isal\]'"):
            JSONLWriter(tmp_path, compressor="isal")
        with pytest.raises(ConfigError, match=r"ANALYTICS_COMPRESSOR"):
            WriterConfig.from_env(environ={"ANALYTICS_COMPRESSOR": "isal"})
        assert JSONLWriter(tmp_path).config.compressor == "zlib"  # the default needs nothing

    def test_unknown_unit_message_explains_the_units(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"KB = 1000 bytes, KiB = 1024 bytes"):
            JSONLWriter(tmp_path, max_file_size="100 mb")


def options_table() -> list[str]:
    """The options table of docs/configuration.md, from WriterConfig's declarations."""
    lines = ["| option | type and forms | default | what it does |", "|---|---|---|---|"]
    for name, field in WriterConfig.model_fields.items():
        assert isinstance(field.json_schema_extra, dict), name
        default = "none" if field.default is None else f"`{field.default}`"
        if isinstance(field.default, bool):
            default = f"`{str(field.default).lower()}`"
        kind = field.json_schema_extra["kind"]
        lines.append(f"| `{name}` | {kind} | {default} | {field.description} |")
    return lines


def environment_table() -> list[str]:
    """The environment table of docs/configuration.md, from WriterConfig's declarations."""
    lines = ["| variable | option | example |", "|---|---|---|"]
    for name, field in WriterConfig.model_fields.items():
        assert isinstance(field.json_schema_extra, dict), name
        example = field.json_schema_extra.get("example", field.default)
        lines.append(f"| `{WriterConfig.env_variable(name)}` | `{name}` | `{example}` |")
    return lines


def docs_table(header: str) -> list[str]:
    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    lines = text.splitlines()
    start = lines.index(header)
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start:end]


class TestOptionsAreDeclaredOnce:
    """WriterConfig's fields are the one declaration of every option: the docs tables
    are checked against them (on failure, the expected table is in the diff)."""

    def test_the_options_table_matches_the_fields(self) -> None:
        assert docs_table("| option | type and forms | default | what it does |") == (
            options_table()
        )

    def test_the_environment_table_matches_the_fields(self) -> None:
        assert docs_table("| variable | option | example |") == environment_table()

    def test_each_documented_default_is_the_default(self) -> None:
        """A default written as users write it ("100 MiB") is what a config holds."""
        config = WriterConfig()
        for name, field in WriterConfig.model_fields.items():
            assert (
                getattr(config, name)
                == WriterConfig.model_validate({name: field.default}).model_dump()[name]
            ), name

    @pytest.mark.parametrize("name", list(WriterConfig.model_fields))
    def test_each_environment_variable_is_read(self, name: str) -> None:
        extra = WriterConfig.model_fields[name].json_schema_extra
        assert isinstance(extra, dict)
        example = extra.get("example", WriterConfig.model_fields[name].default)
        variable = WriterConfig.env_variable(name)
        config = WriterConfig.from_env(environ={variable: str(example)})
        assert config == WriterConfig.model_validate({name: str(example)})

    @pytest.mark.parametrize("name", [n for n in WriterConfig.model_fields if n != "base_path"])
    def test_a_bad_value_names_the_declared_forms(self, name: str) -> None:
        variable = WriterConfig.env_variable(name)
        with pytest.raises(ConfigError) as info:
            WriterConfig.from_env(environ={variable: "-1 parsecs"})
        assert variable in str(info.value)
        assert WriterConfig.forms(name) in str(info.value)
