"""Route modules of the API: thin functions that call the store."""
