"""Local stand-ins for the outside services LeadHub talks to (tests and benchmarks only)."""
