"""Talking to GitHub as the App: auth, installation clients, git credentials."""
