"""Configuration sources: environment variables, TOML and JSON files, and
``JSONLWriter.from_config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics import ArgumentTypeError, ConfigError, JSONLWriter, WriterConfig

from .helpers import entry, read_all


class TestConfigSources:
    def test_from_env_reads_every_option(self, tmp_path: Path) -> None:
        env = {
            "ANALYTICS_BASE_PATH": str(tmp_path),
            "ANALYTICS_MAX_FILE_SIZE": "64 MiB",
            "ANALYTICS_MAX_FILES": "7",
            "ANALYTICS_MAX_AGE": "7d",
            "ANALYTICS_ROTATE_INTERVAL": "1h",
            "ANALYTICS_COMPRESS_OLD": "false",
            "ANALYTICS_COMPRESS_LEVEL": "9",
            "ANALYTICS_COMPRESSOR": "isal",
            "ANALYTICS_BUFFER_SIZE": "50",
            "ANALYTICS_FLUSH_INTERVAL": "500ms",
            "ANALYTICS_FSYNC": "always",
            "ANALYTICS_MAX_PENDING": "999",
            "ANALYTICS_ON_FULL": "drop_newest",
            "ANALYTICS_FILENAME_PREFIX": "events",
            "UNRELATED": "x",
        }
        config = WriterConfig.from_env(environ=env)
        assert config == WriterConfig(
            base_path=tmp_path,
            max_file_size=64 * 2**20,
            max_files=7,
            max_age=7 * 86400,
            rotate_interval=3600,
            compress_old=False,
            compress_level=9,
            compressor="isal",
            buffer_size=50,
            flush_interval=0.5,
            fsync="always",
            max_pending=999,
            on_full="drop_newest",
            filename_prefix="events",
        )

    def test_from_env_uses_os_environ_and_a_custom_prefix(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MYAPP_MAX_FILES", "3")
        assert WriterConfig.from_env(prefix="MYAPP_").max_files == 3
        assert WriterConfig.from_env(environ={}) == WriterConfig()

    @pytest.mark.parametrize(
        ("variable", "value", "forms"),
        [
            ("ANALYTICS_MAX_FILE_SIZE", "10 mb", "'100 MiB'"),
            ("ANALYTICS_FLUSH_INTERVAL", "soon", "'30s'"),
            ("ANALYTICS_FSYNC", "sometimes", "never, rotate, always"),
            ("ANALYTICS_MAX_FILES", "many", "whole number"),
            ("ANALYTICS_COMPRESS_OLD", "perhaps", "true or false"),
        ],
    )
    def test_an_invalid_variable_is_named_with_the_accepted_forms(
        self, variable: str, value: str, forms: str
    ) -> None:
        with pytest.raises(ConfigError) as info:
            WriterConfig.from_env(environ={variable: value})
        message = str(info.value)
        assert variable in message
        assert repr(value) in message
        assert forms in message

    def test_from_file_toml_and_json(self, tmp_path: Path) -> None:
        toml = tmp_path / "a.toml"
        toml.write_text('[analytics]\nmax_file_size = "1 MiB"\nrotate_interval = "1h"\n')
        plain = tmp_path / "b.toml"
        plain.write_text("max_files = 4\n")
        js = tmp_path / "c.json"
        js.write_text(json.dumps({"analytics": {"max_age": "30d", "fsync": "never"}}))
        assert WriterConfig.from_file(toml) == WriterConfig(
            max_file_size=2**20, rotate_interval=3600
        )
        assert WriterConfig.from_file(plain).max_files == 4
        assert WriterConfig.from_file(js) == WriterConfig(max_age=30 * 86400, fsync="never")

    @pytest.mark.parametrize(
        ("name", "text", "match"),
        [
            ("bad.toml", "max_file_size = '10 mb'\n", "max_file_size"),
            ("unknown.toml", "colour = 'red'\n", "colour"),
            ("broken.json", "{not json", "cannot load"),
            ("settings.yaml", "a: 1", ".toml or .json"),
        ],
    )
    def test_from_file_errors_name_the_file_and_option(
        self, tmp_path: Path, name: str, text: str, match: str
    ) -> None:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigError, match=match) as info:
            WriterConfig.from_file(path)
        assert name in str(info.value)

    async def test_from_config_takes_the_base_path_from_the_config(self, tmp_path: Path) -> None:
        config = WriterConfig(base_path=tmp_path / "a", max_files=3)
        writer = JSONLWriter.from_config(config)
        assert writer.metrics_dir == tmp_path / "a" / "metrics"
        assert writer.config.max_files == 3
        other = JSONLWriter.from_config(config, tmp_path / "b")
        assert other.metrics_dir == tmp_path / "b" / "metrics"
        async with writer:
            await writer.write(entry())
        assert len(read_all(writer.metrics_dir)) == 1

    def test_from_config_takes_one_argument_order(self, tmp_path: Path) -> None:
        config = WriterConfig(max_files=2)
        with pytest.raises(ArgumentTypeError, match=r"from_config\(config, base_path=None\)"):
            JSONLWriter.from_config(tmp_path, config)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="WriterConfig"):  # still a TypeError
            JSONLWriter.from_config({"max_files": 2})  # type: ignore[arg-type]

    def test_from_config_without_a_base_path_says_so(self) -> None:
        with pytest.raises(ConfigError, match="base_path"):
            JSONLWriter.from_config(WriterConfig())
