"""Small helpers shared by the plugins, the HTTP disk server and the scripts."""
