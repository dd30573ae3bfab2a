"""The dashboard: server-rendered pages over the same services as the API (issue 11).

hub.web.routes.install_web adds it to the app built by hub.api.create_app.
"""
