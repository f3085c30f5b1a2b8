"""Privacy: what is kept of people, and for how long."""
