"""A local deploy of a team's own fleet: an emulator on loopback, stand-ins, `local` commands."""
