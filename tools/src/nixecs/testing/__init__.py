"""Test doubles that run for real on loopback: the IMDSv2 emulator, a fault-injecting proxy."""
