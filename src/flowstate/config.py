"""Settings: flags > environment > flowstate.toml > defaults (being written)."""
