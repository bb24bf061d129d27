"""On the host: the IMDS client, `apply` at boot, secrets and draining."""
