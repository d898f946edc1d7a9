"""Local stand-ins for the external services the front ends talk to (tests only)."""
