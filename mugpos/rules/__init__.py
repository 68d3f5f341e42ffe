"""Plain-language rules: understand them, check them against a Scene, and say where a mug should go.

Pure: no torch, no models, no MCP SDK, no I/O except in `store.py` and the LLM path of
`interpreter.py`.
"""
