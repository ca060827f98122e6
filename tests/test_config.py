"""Settings: precedence, the Step Functions Local names, flowstate.toml and every error path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from flowstate.config import (
    SETTING_NAMES,
    ConfigError,
    Settings,
    env_names,
    flag_name,
    load_settings,
)

DOCS = Path(__file__).parents[1] / "docs" / "configuration.md"


def load(tmp_path: Path, flags: dict[str, Any] | None = None, **environ: str) -> Settings:
    return load_settings(flags, environ=environ, cwd=tmp_path)


def write_toml(directory: Path, text: str, name: str = "flowstate.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_nothing_given_is_the_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings == Settings()
    assert settings.port == 8083
    assert settings.db is None
    assert set(settings.sources) == set(SETTING_NAMES)
    assert set(settings.sources.values()) == {"default"}


# -- precedence ------------------------------------------------------------------------------


def test_file_beats_default(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = 1001\n")
    settings = load(tmp_path)
    assert settings.port == 1001
    assert settings.sources["port"] == "flowstate.toml"
    assert settings.sources["host"] == "default"


def test_environment_beats_file(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = 1001\n")
    settings = load(tmp_path, FLOWSTATE_PORT="1002")
    assert settings.port == 1002
    assert settings.sources["port"] == "FLOWSTATE_PORT"


def test_flag_beats_environment_and_file(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = 1001\n")
    settings = load(tmp_path, {"port": 1003}, FLOWSTATE_PORT="1002")
    assert settings.port == 1003
    assert settings.sources["port"] == "--port"


def test_levels_merge_per_setting(tmp_path: Path) -> None:
    write_toml(tmp_path, 'host = "0.0.0.0"\nretention_days = 7\n')
    settings = load(tmp_path, {"retention_days": 3}, FLOWSTATE_LOG_LEVEL="debug")
    assert (settings.host, settings.retention_days, settings.log_level) == ("0.0.0.0", 3, "debug")
    assert settings.sources["host"] == "flowstate.toml"
    assert settings.sources["retention_days"] == "--retention-days"
    assert settings.sources["log_level"] == "FLOWSTATE_LOG_LEVEL"


def test_flags_that_are_none_or_empty_are_not_given(tmp_path: Path) -> None:
    # click passes None for an unused option and () for an unused repeatable one.
    settings = load(
        tmp_path, {"port": None, "functions": (), "deploy": []}, FLOWSTATE_FUNCTIONS="a.py"
    )
    assert settings.port == 8083
    assert settings.functions == ("a.py",)
    assert settings.deploy == ()
    assert settings.sources["functions"] == "FLOWSTATE_FUNCTIONS"


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = 1001\n")
    settings = load(tmp_path, FLOWSTATE_PORT="  ", FLOWSTATE_DB="")
    assert settings.port == 1001
    assert settings.db is None


@pytest.mark.parametrize(
    ("name", "sfn_local_var", "value"),
    [
        ("account_id", "AWS_ACCOUNT_ID", "000000000000"),
        ("region", "AWS_DEFAULT_REGION", "eu-west-1"),
        ("mock_config", "SFN_MOCK_CONFIG", "/home/StepFunctionsLocal/MockConfigFile.json"),
    ],
)
def test_step_functions_local_names_are_read(
    tmp_path: Path, name: str, sfn_local_var: str, value: str
) -> None:
    settings = load(tmp_path, **{sfn_local_var: value})
    assert getattr(settings, name) == value
    assert settings.sources[name] == sfn_local_var


def test_flowstate_name_beats_step_functions_local_name(tmp_path: Path) -> None:
    settings = load(tmp_path, FLOWSTATE_REGION="ap-south-1", AWS_DEFAULT_REGION="eu-west-1")
    assert settings.region == "ap-south-1"
    assert settings.sources["region"] == "FLOWSTATE_REGION"


def test_step_functions_local_name_beats_file(tmp_path: Path) -> None:
    write_toml(tmp_path, 'account_id = "111111111111"\n')
    assert load(tmp_path, AWS_ACCOUNT_ID="222222222222").account_id == "222222222222"


def test_unknown_flowstate_variables_are_ignored(tmp_path: Path) -> None:
    # The prefix is shared: the test suite itself reads FLOWSTATE_CORPUS.
    assert load(tmp_path, FLOWSTATE_CORPUS="/x", FLOWSTATE_PROT="1") == Settings()


# -- values ----------------------------------------------------------------------------------


def test_environment_lists_are_comma_separated(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        FLOWSTATE_FUNCTIONS=" handlers.py , pkg.tasks ,",
        FLOWSTATE_DEPLOY="machines/a.asl.json,machines/b.asl.yaml",
    )
    assert settings.functions == ("handlers.py", "pkg.tasks")
    assert settings.deploy == ("machines/a.asl.json", "machines/b.asl.yaml")


def test_flag_lists_keep_their_items(tmp_path: Path) -> None:
    settings = load(tmp_path, {"functions": ("a.py", "pkg.mod")})
    assert settings.functions == ("a.py", "pkg.mod")


def test_string_flags_are_parsed_like_the_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, {"port": "9000", "deploy": "a.json,b.json"})
    assert settings.port == 9000
    assert settings.deploy == ("a.json", "b.json")


def test_choices_are_case_insensitive_and_normalised(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        FLOWSTATE_CLOCK="VIRTUAL",
        FLOWSTATE_SQLITE_SYNCHRONOUS="full",
        FLOWSTATE_LOG_LEVEL="Warning",
    )
    assert (settings.clock, settings.sqlite_synchronous, settings.log_level) == (
        "virtual",
        "FULL",
        "warning",
    )


def test_port_zero_is_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, FLOWSTATE_PORT="0").port == 0


def test_toml_sets_every_setting_at_top_level(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        """
host = "0.0.0.0"
port = 9999
db = "sqlite:///var/flowstate.db"
clock = "virtual"
account_id = "000000000000"
region = "eu-central-1"
functions = ["handlers.py", "pkg.tasks"]
deploy = ["machines/order.asl.json"]
mock_config = "MockConfigFile.json"
retention_days = 7
max_payload_bytes = 1024
max_history_events = 100
express_timeout_seconds = 60
redrive_window_days = 1
group_commit_max = 64
sqlite_synchronous = "FULL"
log_level = "debug"
task_threads = 4
lease_seconds = 3
""",
    )
    settings = load(tmp_path)
    assert settings == Settings(
        host="0.0.0.0",
        port=9999,
        db="sqlite:///var/flowstate.db",
        clock="virtual",
        account_id="000000000000",
        region="eu-central-1",
        functions=("handlers.py", "pkg.tasks"),
        deploy=("machines/order.asl.json",),
        mock_config="MockConfigFile.json",
        retention_days=7,
        max_payload_bytes=1024,
        max_history_events=100,
        express_timeout_seconds=60,
        redrive_window_days=1,
        group_commit_max=64,
        sqlite_synchronous="FULL",
        log_level="debug",
        task_threads=4,
        lease_seconds=3,
    )
    assert set(settings.sources.values()) == {"flowstate.toml"}


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


def test_names_of_flags_and_variables() -> None:
    assert flag_name("retention_days") == "--retention-days"
    assert env_names("retention_days") == ("FLOWSTATE_RETENTION_DAYS",)
    assert env_names("region") == ("FLOWSTATE_REGION", "AWS_DEFAULT_REGION")


# -- which file ------------------------------------------------------------------------------


def test_missing_implicit_file_is_fine(tmp_path: Path) -> None:
    assert not (tmp_path / "flowstate.toml").exists()
    assert load(tmp_path) == Settings()


def test_missing_file_named_by_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope\.toml: no such file \(given by --config\)$"):
        load_settings(environ={}, config_path="nope.toml", cwd=tmp_path)


def test_missing_file_named_by_environment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file \(given by FLOWSTATE_CONFIG\)"):
        load(tmp_path, FLOWSTATE_CONFIG="nope.toml")


def test_directory_named_as_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    with pytest.raises(ConfigError, match=r"^conf: not a file \(given by --config\)$"):
        load_settings(environ={}, config_path="conf", cwd=tmp_path)


def test_config_flag_beats_config_variable_beats_implicit_file(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = 1\n")
    write_toml(tmp_path, "port = 2\n", name="from-env.toml")
    write_toml(tmp_path, "port = 3\n", name="from-flag.toml")
    environ = {"FLOWSTATE_CONFIG": "from-env.toml"}
    assert load_settings(environ={}, cwd=tmp_path).port == 1
    assert load_settings(environ=environ, cwd=tmp_path).port == 2
    settings = load_settings(environ=environ, config_path="from-flag.toml", cwd=tmp_path)
    assert settings.port == 3
    assert settings.sources["port"] == "from-flag.toml"


def test_named_file_replaces_the_implicit_one(tmp_path: Path) -> None:
    write_toml(tmp_path, "retention_days = 5\n")
    named = write_toml(tmp_path, "port = 3\n", name="other.toml")
    settings = load_settings(environ={}, config_path=named, cwd=tmp_path)
    assert (settings.port, settings.retention_days) == (3, 90)


def test_relative_config_path_is_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    write_toml(tmp_path / "etc", "port = 4\n")
    assert load_settings(environ={}, config_path="etc/flowstate.toml", cwd=tmp_path).port == 4


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FLOWSTATE_PORT": "abc"}, "FLOWSTATE_PORT='abc': expected an integer (environment)"),
        ({"FLOWSTATE_PORT": "8083.0"}, "FLOWSTATE_PORT='8083.0': expected an integer"),
        (
            {"FLOWSTATE_PORT": "70000"},
            "FLOWSTATE_PORT='70000': must be between 0 and 65535 (environment)",
        ),
        (
            {"FLOWSTATE_RETENTION_DAYS": "0"},
            "FLOWSTATE_RETENTION_DAYS='0': must be at least 1 (environment)",
        ),
        ({"FLOWSTATE_TASK_THREADS": "-2"}, "FLOWSTATE_TASK_THREADS='-2': must be at least 1"),
        (
            {"FLOWSTATE_CLOCK": "fast"},
            "FLOWSTATE_CLOCK='fast': expected one of: real, virtual (environment)",
        ),
        (
            {"FLOWSTATE_SQLITE_SYNCHRONOUS": "OFF"},
            "FLOWSTATE_SQLITE_SYNCHRONOUS='OFF': expected one of: NORMAL, FULL (environment)",
        ),
        ({"AWS_ACCOUNT_ID": "1234"}, "AWS_ACCOUNT_ID='1234': expected 12 digits (environment)"),
        (
            {"AWS_DEFAULT_REGION": "US East"},
            "AWS_DEFAULT_REGION='US East': expected a region name such as us-east-1",
        ),
    ],
)
def test_bad_environment_value(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load(tmp_path, **environ)


def test_bad_step_functions_local_value_is_an_error_even_when_overridden(tmp_path: Path) -> None:
    # Every value given is checked, not only the winning one: a broken setup fails now.
    with pytest.raises(ConfigError, match=r"^AWS_ACCOUNT_ID='x'"):
        load(tmp_path, FLOWSTATE_ACCOUNT_ID="123456789012", AWS_ACCOUNT_ID="x")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("retention_days = 0", "flowstate.toml: retention_days = 0: must be at least 1"),
        ('port = "8083"', 'flowstate.toml: port = "8083": expected an integer'),
        ("task_threads = true", "flowstate.toml: task_threads = true: expected an integer"),
        ("port = 8083.0", "flowstate.toml: port = 8083.0: expected an integer"),
        (
            "account_id = 123456789012",
            "flowstate.toml: account_id = 123456789012: expected a string",
        ),
        ('functions = "a.py"', 'flowstate.toml: functions = "a.py": expected a list of strings'),
        ("deploy = [1, 2]", "flowstate.toml: deploy = [1, 2]: expected a list of strings"),
        ('deploy = ["a.json", ""]', 'flowstate.toml: deploy = ["a.json", ""]: items must not'),
        ('host = ""', 'flowstate.toml: host = "": must not be empty'),
        ('log_level = "loud"', 'flowstate.toml: log_level = "loud": expected one of: debug, info'),
    ],
)
def test_bad_file_value(tmp_path: Path, toml: str, message: str) -> None:
    write_toml(tmp_path, toml + "\n")
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load(tmp_path)


def test_bad_file_value_is_an_error_even_when_overridden(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = -1\n")
    with pytest.raises(ConfigError, match=r"^flowstate\.toml: port = -1: must be between"):
        load(tmp_path, {"port": 8080})


def test_unknown_file_key_suggests_the_setting(tmp_path: Path) -> None:
    write_toml(tmp_path, "retention_day = 7\n")
    with pytest.raises(
        ConfigError,
        match=r"^flowstate\.toml: unknown setting 'retention_day' \(did you mean 'retention_days'\?\)$",
    ):
        load(tmp_path)


def test_unknown_file_key_without_a_near_match(tmp_path: Path) -> None:
    write_toml(tmp_path, "zzz = 1\n")
    with pytest.raises(ConfigError, match=r"^flowstate\.toml: unknown setting 'zzz' \(see docs"):
        load(tmp_path)


def test_tables_are_refused_settings_are_top_level(tmp_path: Path) -> None:
    write_toml(tmp_path, "[flowstate]\nport = 9000\n")
    with pytest.raises(
        ConfigError,
        match=r"^flowstate\.toml: unknown setting 'flowstate' \(settings are top-level keys",
    ):
        load(tmp_path)


def test_error_names_the_explicit_file_as_given(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = -5\n", name="dev.toml")
    with pytest.raises(ConfigError, match=r"^dev\.toml: port = -5: must be between 0 and 65535$"):
        load(tmp_path, FLOWSTATE_CONFIG="dev.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, "port = \n")
    with pytest.raises(ConfigError, match=r"^flowstate\.toml: invalid TOML: "):
        load(tmp_path)


def test_bad_flag_value(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^--port=-1: must be between 0 and 65535 \(command line\)$"
    ):
        load(tmp_path, {"port": -1})


def test_unknown_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--prot: unknown setting 'prot' \(command line\)$"):
        load(tmp_path, {"prot": 1})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# -- the reference page ----------------------------------------------------------------------


def test_docs_table_lists_every_setting_flag_and_variable() -> None:
    rows = [line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    for name in SETTING_NAMES:
        row = next((r for r in rows if r.startswith(f"| `{name}`")), None)
        assert row is not None, f"docs/configuration.md has no row for {name}"
        assert f"`{flag_name(name)}`" in row
        for var in env_names(name):
            assert f"`{var}`" in row


# -- connections (HTTP Tasks) -----------------------------------------------------------------


def test_connections_are_tables_with_secrets_from_the_environment(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        """
region = "eu-west-1"

[connections.Stripe]
authorization_type = "api_key"
api_key_name = "Authorization"
api_key_value_env = "STRIPE_KEY"

[connections.Stripe.header_parameters]
"X-Tenant" = "acme"
"X-Secret" = { env = "TENANT_SECRET" }

[connections.Local]
authorization_type = "NONE"
""",
    )
    settings = load(tmp_path, STRIPE_KEY="Bearer sk_test", TENANT_SECRET="t")
    stripe = settings.connections["Stripe"]
    assert stripe["authorization_type"] == "API_KEY"
    assert stripe["api_key_value"] == "Bearer sk_test"
    assert dict(stripe["header_parameters"]) == {"X-Tenant": "acme", "X-Secret": "t"}
    assert settings.connections["Local"] == {"authorization_type": "NONE"}
    assert "sk_test" not in repr(settings)
    assert settings.region == "eu-west-1"  # the other settings are read as before
    assert "connections" not in settings.sources


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('authorization_type = "DIGEST"', "expected one of: BASIC, API_KEY"),
        ('authorization_type = "BASIC"\nusername = "u"', "needs password"),
        ('authorization_type = "BASIC"\nusername = "u"\npassword_env = "UNSET_VAR"', "UNSET_VAR"),
        ('authorization_type = "BASIC"\nusername = "u"\npassword = "p"\npassword_env = "V"',
         "not both"),
        ('authorization_type = "NONE"\nhttp_methd = "POST"', "unknown key 'http_methd'"),
        ('authorization_type = "NONE"\nheader_parameters = "x"', "table of strings"),
        ('authorization_type = "OAUTH_CLIENT_CREDENTIALS"\nclient_id = "i"', "needs"),
    ],
)  # fmt: skip
def test_bad_connections_name_the_place(tmp_path: Path, table: str, message: str) -> None:
    write_toml(tmp_path, f"[connections.Api]\n{table}\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load(tmp_path, V="v")
    assert "flowstate.toml: connections.Api" in str(raised.value)


def test_connections_must_be_tables(tmp_path: Path) -> None:
    write_toml(tmp_path, 'connections = "x"\n')
    with pytest.raises(ConfigError, match="connections"):
        load(tmp_path)
