"""Authentication API: discovery, /authorize, /oauth/token, /userinfo, logout, revoke."""
