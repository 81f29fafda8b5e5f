"""Background sync: scheduled jobs that work on users' behalf from the credential projection."""
