"""CloudTrail: the record of every API call, its event history, trails that deliver signed log files."""
