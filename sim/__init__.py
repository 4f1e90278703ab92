"""tokenflow sim."""
