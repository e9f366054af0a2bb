"""The rules of Keystead: pure and typed; no web framework, SQL or template imports."""
