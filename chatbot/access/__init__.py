"""Who is calling: API keys, the admin login, portal and browser identities; shared by the web API and the UI."""
