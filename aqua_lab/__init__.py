"""aqua_lab: plan, deploy, chat with and evaluate several LLMs on one GPU shape."""

from .version import __version__

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict]:
    # the prebuilt sidebar (built from labextension/ into the package; see scripts/labextension.sh)
    return [{"src": "labextension", "dest": "aqua-lab"}]


def _jupyter_server_extension_points() -> list[dict]:
    from .server.app import AquaLab

    return [{"module": "aqua_lab", "app": AquaLab}]
