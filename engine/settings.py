"""Every environment variable the engine reads, declared once.

The entry points (the CLI, ``engine serve``, the Python API's constructors) call
:meth:`EngineSettings.load` and pass the result down; no other module reads ``os.environ``.
A value that does not parse is a :class:`~engine.errors.SettingsError` naming the variable,
never a silent fall-back to the default. (``${env:NAME}`` in pipeline files is interpolation
of the file, not a setting, and is not declared here.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from engine.errors import SettingsError

__all__ = [
    "SETTINGS_DOC",
    "EngineSettings",
    "SettingsError",
    "env_name",
    "process_environ",
    "render_settings_doc",
    "settings_reference",
]

#: the generated page of every variable (a test checks it for drift)
SETTINGS_DOC = "docs/settings.md"

_BOOL = "true/false, 1/0, yes/no or on/off"


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def process_environ(under: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The process environment, laid over ``under`` (an env file's variables) when given:
    what settings and ``${env:...}`` read."""
    return {**under, **os.environ} if under else os.environ


class EngineSettings(BaseModel):
    """The process environment, parsed: one field per variable, named by the variable.

    :meth:`load` reads the variables: names in any case, an empty one counts as unset, and
    no ``.env`` file or secrets folder is read (``--env-file`` is the CLI's)."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True)

    # -- the workspace and the CLI --------------------------------------------------------
    engine_home: Path | None = Field(
        None,
        description="Folder of the workspace (audit store, keys, checkpoints, state database, "
        "dead letters). `--workspace` wins over it; unset: `.engine/` beside the pipeline file "
        "given, else `./.engine` (docs/state.md).",
        examples=["/var/lib/engine"],
    )
    engine_audit: bool = Field(
        True,
        description="Set to false to run every pipeline without the audit trail "
        "(like `engine run --no-audit`).",
    )
    engine_debug: bool = Field(
        False, description="Show the traceback of an internal error instead of one line."
    )
    engine_log_level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = Field(
        "info",
        description="Least severe log record shown, for every command (like `--log-level`).",
    )
    engine_log_format: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = Field(
        "text",
        description="`text`, or `json`: one object per line on stderr (like `--log-format`).",
    )
    engine_columnar: Literal["auto", "off"] = Field(
        "auto",
        description="`auto`: components whose expressions translate run on Arrow batches "
        "(polars) when the `columnar` extra is installed; `off`: every record takes the row "
        "path (docs/columnar.md).",
    )
    engine_secrets_backend: str = Field(
        "file",
        description="Backend that resolves `${secret:NAME:key}` in pipeline files: `file` (the "
        "encrypted file in the workspace) or a name registered under the `engine.secrets` "
        "entry point group (docs/secrets.md).",
    )
    engine_secrets_key: SecretStr | None = Field(
        None,
        description="Fernet key of the `file` secrets backend; default: the workspace's "
        "`secrets.key` file (mode 0600, made by `engine secrets set`).",
    )

    # -- the audit trail --------------------------------------------------------------------
    audit_secret_key: SecretStr | None = Field(
        None,
        description="HMAC key of the audit trail when `[audit] key` is unset; default: a key "
        "file generated in the workspace.",
    )
    audit_signing_key: SecretStr | None = Field(
        None,
        description="Ed25519 checkpoint key (PEM or base64) when `[audit] signing_key` is "
        "unset; default: a key file generated in the workspace.",
    )
    audit_retention_days: int | None = Field(
        None,
        ge=1,
        description="Prune each chain to its last N days at the end of a run; wins over "
        "`[audit] retention_days`. Default: keep everything.",
        examples=[365],
    )
    audit_max_events: int | None = Field(
        None,
        ge=1,
        description="Prune each chain to its newest N events at the end of a run; wins over "
        "`[audit] max_events`. Default: no cap.",
        examples=[1_000_000],
    )
    audit_compliance_enabled: bool | None = Field(
        None, description="Set to false to evaluate no compliance rule at all."
    )
    audit_pseudonym_key: SecretStr | None = Field(
        None,
        description="Key of the pseudonyms that replace personal fields in event details; "
        "default: derived from the audit HMAC key.",
    )
    audit_notify_secret: SecretStr | None = Field(
        None,
        description="Key of the X-Engine-Signature HMAC of compliance notifications when "
        "`[audit] notify_secret` is unset; default: derived from the audit HMAC key.",
    )
    compliance_sox_enabled: bool | None = Field(
        None, description="Set to false to switch off the SOX rules."
    )
    compliance_pci_dss_enabled: bool | None = Field(
        None, description="Set to false to switch off the PCI DSS rules."
    )
    compliance_gdpr_enabled: bool | None = Field(
        None, description="Set to false to switch off the GDPR rules."
    )
    compliance_hipaa_enabled: bool | None = Field(
        None, description="Set to false to switch off the HIPAA rules."
    )
    compliance_iso27001_enabled: bool | None = Field(
        None, description="Set to false to switch off the ISO 27001 rules."
    )
    compliance_custom_enabled: bool | None = Field(
        None, description="Set to false to switch off custom rules (rules files, `[audit] rules`)."
    )

    # -- connectors and the runtime ---------------------------------------------------------
    integration_redis_url: str | None = Field(
        None,
        description="Redis shared by every process of a deployment: rate-limit buckets and "
        "the webhook replay cache. Default: both kept in the process (replays in the workspace).",
        examples=["redis://127.0.0.1:6379/0"],
    )
    engine_broker_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/%2F"),
        description="RabbitMQ of `engine worker` and `engine run --distributed` (Dramatiq).",
        examples=["amqp://engine:secret@rabbit.internal:5672/%2F"],
    )
    integration_timeout: float = Field(
        30.0, gt=0, description="Seconds per HTTP request of a component without `timeout`."
    )
    integration_retry_count: int = Field(
        3, ge=0, description="Retries of a transient failure for a component without `retry`."
    )
    integration_rate_limit: float | None = Field(
        None,
        gt=0,
        description="Calls per second of each `IntegrationManager` integration (Python API); "
        "default: unlimited.",
        examples=[10],
    )

    # -- traces (OpenTelemetry, the `otel` extra; docs/operations.md) ----------------------
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector: set, `engine run` and `engine serve` export traces "
        "to it. The other OTEL_* variables are read by OpenTelemetry itself.",
        examples=["http://127.0.0.1:4318"],
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP endpoint of traces alone; set, traces are exported to it.",
        examples=["http://127.0.0.1:4318/v1/traces"],
    )
    otel_service_name: str | None = Field(
        None, description="The service the traces name; default `engine`."
    )
    otel_sdk_disabled: bool = Field(
        False, description="Set to true to export no traces whatever the endpoint."
    )

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        """Parse ``environ`` (default: the process environment); a bad value is a
        :class:`SettingsError` that names every offending variable."""
        if environ is None:
            environ = os.environ
        wanted = {env_name(name): name for name in cls.model_fields}
        values: dict[str, Any] = {
            wanted[key.upper()]: value
            for key, value in environ.items()
            if value != "" and key.upper() in wanted
        }
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_problems(exc)) from None

    @classmethod
    def defaults(cls) -> EngineSettings:
        """The settings of an empty environment (for code paths that are handed none)."""
        return _defaults()

    def compliance_switch(self, standard: str) -> bool | None:
        """``COMPLIANCE_<STANDARD>_ENABLED``: None when unset."""
        value = getattr(self, f"compliance_{standard.lower()}_enabled", None)
        return value if isinstance(value, bool) else None


@cache
def _defaults() -> EngineSettings:
    return EngineSettings.load({})


def env_name(field: str) -> str:
    """The variable behind a field of :class:`EngineSettings`."""
    return field.upper()


def _is_secret(field: str) -> bool:
    info = EngineSettings.model_fields.get(field)
    return info is not None and info.annotation in (SecretStr, SecretStr | None)


def _reason(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "int_parsing" or kind == "int_from_float":
        return "not an integer"
    if kind == "float_parsing":
        return "not a number"
    if kind == "bool_parsing":
        return f"not a boolean ({_BOOL})"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']:g}"
    if kind == "greater_than":
        return f"must be more than {ctx['gt']:g}"
    return str(error["msg"]).lower()


def _problems(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        text = f"{env_name(field)}: {_reason(error)}"
        if not _is_secret(field):
            text += f" ({error['input']!r})"
        out.append(text)
    return out


def settings_reference() -> str:
    """The Markdown table of every variable: name, type, default and meaning."""
    lines = [
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, info in EngineSettings.model_fields.items():
        kind = _type_name(info.annotation)
        default = "" if info.default is None else f"`{_toml(info.default)}`"
        description = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{env_name(name)}` | {kind} | {default} | {description} |")
    return "\n".join(lines) + "\n"


def render_settings_doc() -> str:
    """The text of docs/settings.md: how settings are read, and the table of variables."""
    return (
        "# Environment variables\n\n"
        "<!-- generated from engine/settings.py by engine.settings.render_settings_doc(); "
        "do not edit -->\n\n"
        "The engine reads these variables once, when a command or a Python API object starts "
        "(`engine ...`, `engine serve`, `engine.pipeline.run`, `AuditSystem()`, "
        "`IntegrationManager()`), and hands them down; an empty variable counts as unset. "
        "A value that does not parse stops the command with exit 78 and a line naming the "
        "variable and the problem, for example "
        "`error: INTEGRATION_RETRY_COUNT: not an integer ('abc')` (the value of a secret is "
        "never shown). In Python the same check raises `engine.errors.SettingsError`; pass "
        "`settings=EngineSettings.load(...)` to use other values than the environment's.\n\n"
        "`${env:NAME}` in a pipeline file is something else: interpolation of the file, "
        "with any variable name.\n\n" + settings_reference()
    )


def _type_name(annotation: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        Path: "path",
        SecretStr: "secret",
    }
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in get_args(annotation))
    args = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
    return " or ".join(names.get(a, getattr(a, "__name__", str(a))) for a in args)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
