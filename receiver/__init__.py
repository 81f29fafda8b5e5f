"""The composition root: settings, the HTTP app, the command line. Nothing imports it."""
