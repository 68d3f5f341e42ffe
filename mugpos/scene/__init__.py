"""The desk as the camera saw it: the Scene model, its geometry and its scale.

Pure: plain functions over pydantic models, no I/O, no torch. Everything above (engine, rules,
stores, operations) speaks these types.
"""
