"""One module per pipeline step; ``api`` strings them together."""
