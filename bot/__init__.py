"""Privacy answers bot: cited answers about platforms training AI on user data."""
