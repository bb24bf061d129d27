"""CloudFormation: one stack per cluster (DESIGN §7)."""
