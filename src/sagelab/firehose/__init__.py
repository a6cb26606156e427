"""Firehose: delivery streams that buffer records durably and deliver them into the lake as objects."""
