"""Report cards of a desk: Templated.io when an API key is set, a local Pillow renderer otherwise."""
