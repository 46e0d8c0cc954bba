"""aqua_lab: plan, deploy, chat with and evaluate several LLMs on one GPU shape."""

__version__ = "0.1.0"
