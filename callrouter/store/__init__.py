"""The store: queries and writes beside the models, inside the caller's transaction."""
