"""Modal screens: confirm (panic exit, quit), master password, policies, help."""
