"""Pixels -> Scene. Heavy modules (torch, ultralytics, open_clip) are imported lazily inside."""
