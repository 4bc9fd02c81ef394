"""Identity and access: principals, permissions, tokens, passwords, API keys, service scopes."""
