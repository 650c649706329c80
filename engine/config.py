"""The configuration: a TOML file (`--config FILE`, else `./perpguard.toml`, else
`$XDG_CONFIG_HOME/perpguard/perpguard.toml`), overridable by `PERPGUARD_...` environment
variables (`PERPGUARD_ENGINE__LISTEN=127.0.0.1:9000`), then by the command line.

```toml
[engine]
listen = "127.0.0.1:8710"     # the gateway; a non-loopback host needs allow_remote = true
allow_remote = false
db = "sqlite:////home/me/.local/share/perpguard/perpguard.db"   # or postgresql+psycopg://...
policies = "policies.json"    # used when the store has none yet; else the SPEC defaults
dead_man = "flat"             # arm scheduleCancel only while no position carries a venue stop; or "always"

[paper]
equity = 100000
seed = 7                      # the simulated market
account_mode = "standard"     # or "unified" / "portfolio", as Hyperliquid's account modes

[exchange]
kind = "paper"                # or "hyperliquid" (then network, account_address, agent_key_env|agent_key_file)

[notify]
webhooks = ["https://hooks.example/perpguard"]

[console]
theme = "dark"
keymap = { approve = "A" }    # binding id -> keys
```
Unknown keys are refused, naming the key, so a typo never silently turns a rule off.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_LISTEN = "127.0.0.1:8710"
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)  # TOML has `inf` and `nan` literals: never a setting


class ConfigError(ValueError):
    """A config that cannot be used; `field` is the dotted key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> ConfigError:
        """The first error of a pydantic validation, its key dotted under `prefix`."""
        err = exc.errors()[0]
        field = prefix + ".".join(str(p) for p in err["loc"])
        return cls(field, "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "))


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EngineSection(BaseModel):
    model_config = STRICT
    listen: str = DEFAULT_LISTEN
    allow_remote: bool = False
    db: str | None = None
    policies: str | None = None
    # The venue's dead-man switch cancels every order, stops included: "flat" arms it only while no
    # position carries a venue stop; "always" arms it anyway (resting orders die with the engine,
    # and so do the stops: positions are then unprotected if the engine dies).
    dead_man: Literal["flat", "always"] = "flat"
    # Builders (0x addresses) a bot's order through /hl/exchange may name with its fee; any other
    # builder field is stripped before the order is signed (ccxt adds its own to every order).
    hl_builders: list[Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$", to_lower=True)]] = []

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_listen(v)
        return v


class PaperSection(BaseModel):
    model_config = STRICT
    equity: float = Field(default=100_000.0, gt=0)
    seed: int = 7
    account_mode: Literal["standard", "unified", "portfolio"] = "standard"  # as Hyperliquid's account modes


class ExchangeSection(BaseModel):
    """`paper`, or `hyperliquid` with the connector's own keys (checked by its config model)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["paper", "hyperliquid"] = "paper"

    def hyperliquid_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NotifySection(BaseModel):
    model_config = STRICT
    webhooks: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)


class ConsoleSection(BaseModel):
    model_config = STRICT
    theme: str = "dark"
    keymap: dict[str, str] = Field(default_factory=dict)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERPGUARD_", env_nested_delimiter="__", extra="forbid")

    engine: EngineSection = Field(default_factory=EngineSection)
    paper: PaperSection = Field(default_factory=PaperSection)
    exchange: ExchangeSection = Field(default_factory=ExchangeSection)
    notify: NotifySection = Field(default_factory=NotifySection)
    console: ConsoleSection = Field(default_factory=ConsoleSection)
    path: str | None = Field(default=None, exclude=True)  # where it was read from

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings  # the environment beats the file (passed as init values)

    @property
    def db_url(self) -> str:
        from engine.store import Store

        return self.engine.db or Store.default_url()

    def host_port(self) -> tuple[str, int]:
        return split_listen(self.engine.listen)


def xdg_config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "perpguard"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600: a config may name a database URL
    with its password, or the agent key file). A new folder is made 0700, and so is perpguard's
    own XDG folder if it exists wider; any other folder (`--config ./perpguard.toml`) is left
    as it is."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.resolve() == xdg_config_dir().resolve() and stat.S_IMODE(folder.stat().st_mode) & 0o077:
        os.chmod(folder, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)  # a file rewritten with --force keeps no wider mode it had


def config_path(explicit: str | None) -> Path | None:
    """The file to read: the one named, else ./perpguard.toml, else the XDG one, else None."""
    if explicit:
        return Path(explicit)
    for candidate in (Path("perpguard.toml"), xdg_config_dir() / "perpguard.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | None = None, **overrides: Any) -> Config:
    """Read the config; `overrides` are dotted keys from the command line (`engine.db=...`)."""
    path = config_path(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("--config", f"{path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value
    try:
        config = Config(**data)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc) from None
    config.path = str(path) if path else None
    return config
