"""A local emulator of the OCI APIs aqua_lab uses (for tests and for trying the OCI path offline)."""

from .seed import seed_from_bundled, write_api_key_config
from .server import Emulator, Fault, new_api_key

__all__ = ["Emulator", "Fault", "new_api_key", "seed_from_bundled", "write_api_key_config"]
