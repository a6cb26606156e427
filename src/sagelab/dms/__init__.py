"""Database Migration Service: endpoints, replication instances and tasks that copy databases into the lake."""
