"""The chat backend's runtime code: a pure core, its AWS adapters and the Lambda handlers."""
