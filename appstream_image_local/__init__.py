"""Offline mode: a local AppStream service and (later) a local CloudFormation driver."""
