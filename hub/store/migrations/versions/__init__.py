"""One module per schema revision; each names the revision before it (one head)."""
