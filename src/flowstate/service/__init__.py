"""The application facade every front end (HTTP API, CLI, console) calls."""
