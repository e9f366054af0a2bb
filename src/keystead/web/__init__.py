"""Server-rendered pages: login, signup, password reset, errors."""
