"""Security tests: keys, tenant isolation, secrets in output, injection (issue #11)."""
