"""tokenflow agents."""
