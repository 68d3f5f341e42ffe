"""mugpos: eyes for mug placement, served to AI assistants over MCP."""

__version__ = "0.1.0"
