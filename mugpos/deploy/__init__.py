"""Deployment: the RunPod serverless worker, the timed pod's idle watchdog, `mugpos deploy runpod`."""
