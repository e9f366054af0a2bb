"""HTTP plumbing shared by every entry point: error rendering, body limits, CORS helpers."""
