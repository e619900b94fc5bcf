"""Agency node runtime and the edges to agency systems."""
