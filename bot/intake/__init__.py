"""From the office's documents to a plan: unit rosters and notices."""
