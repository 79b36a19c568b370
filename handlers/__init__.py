"""The application: messenger-independent use cases, the rules engine and permissions."""
